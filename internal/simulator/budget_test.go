package simulator

import (
	"context"
	"errors"
	"net/http"
	"testing"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/tc3"
)

var second2 = Credential{SecretID: "AKIDfaceidqSimulatorSecondAccount01", SecretKey: "faceidqSimulatorSecondSecretKey01"}

// TestLimitPerSecretID: each SecretId has its own limit of Rate in any sliding
// second; with SharedLimit they share one. Stats.Budgets counts each SecretId.
func TestLimitPerSecretID(t *testing.T) {
	for _, tt := range []struct {
		name         string
		shared       bool
		wantAdmitted int
	}{
		{"own limits", false, 40},
		{"shared limit", true, 20},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := newHarness(t, Config{Credentials: []Credential{second2}, SharedLimit: tt.shared})
			id, key := h.s.Credential()
			creds := []tc3.Credential{{SecretID: id, SecretKey: key}, {SecretID: second2.SecretID, SecretKey: second2.SecretKey}}
			ok := 0
			for i := range 60 { // one frozen instant: the window is full after Rate
				c := creds[i%2]
				if code, _ := h.code(t, call{cred: &c}); code == CodeOK {
					ok++
				}
			}
			st := h.s.Stats()
			if ok != tt.wantAdmitted || st.Admitted != int64(tt.wantAdmitted) {
				t.Fatalf("admitted %d (stats %d), want %d", ok, st.Admitted, tt.wantAdmitted)
			}
			if len(st.Budgets) != 2 {
				t.Fatalf("Budgets = %+v, want one per SecretId", st.Budgets)
			}
			for _, b := range st.Budgets {
				if b.Requests != 30 || b.Admitted != int64(tt.wantAdmitted/2) || b.MaxAdmittedInAnySecond > 20 ||
					b.Host != "127.0.0.1:9000" || b.Action != faceid.Action {
					t.Fatalf("budget %+v", b)
				}
			}
			h.s.ResetStats()
			if st := h.s.Stats(); len(st.Budgets) != 0 {
				t.Fatalf("Budgets after a reset = %+v", st.Budgets)
			}
		})
	}
}

// TestResultOnlyForTheMintingAccount: a BizToken is known to the SecretId that
// minted it alone; Flow records who minted and who fetched.
func TestResultOnlyForTheMintingAccount(t *testing.T) {
	s, base := serveSim(t, Config{Credentials: []Credential{second2}})
	ctx := context.Background()
	tr := http.DefaultTransport.(*http.Transport).Clone()
	t.Cleanup(tr.CloseIdleConnections)
	id, key := s.Credential()
	client := func(id, key string) *faceid.Client {
		c, err := faceid.New(faceid.Config{Endpoint: base, SecretID: id, SecretKey: key, Transport: tr})
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	a, b := client(id, key), client(second2.SecretID, second2.SecretKey)

	r := mint(t, b, "https://app.example.com/back")
	var ae *faceid.APIError
	if _, err := a.Get(ctx, "", *r.BizToken); !errors.As(err, &ae) || ae.Code != "InvalidParameterValue.BizTokenIllegal" {
		t.Fatalf("Get by another account: %v, want BizTokenIllegal", err)
	}
	if _, err := b.Get(ctx, "", *r.BizToken); err != nil {
		t.Fatalf("Get by the minting account: %v", err)
	}
	if f, _ := s.Flow(*r.BizToken); f.MintedBy != second2.SecretID || f.FetchedBy != second2.SecretID {
		t.Fatalf("flow minted by %q, fetched by %q; want %q", f.MintedBy, f.FetchedBy, second2.SecretID)
	}
}

func TestConfigCredentials(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no key":    {Credentials: []Credential{{SecretID: "AKIDx"}}},
		"duplicate": {Credentials: []Credential{{SecretID: DevSecretID, SecretKey: "k"}}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg.Credentials)
		}
	}
}
