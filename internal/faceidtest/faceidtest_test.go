package faceidtest_test

import (
	"net/http"
	"strings"
	"testing"

	tchttp "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/http"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/faceidtest"
	"github.com/faceidq/faceidq/internal/simulator"
)

func TestStart(t *testing.T) {
	sim := faceidtest.Start(t, simulator.Config{})
	if sim.SecretID != simulator.DevSecretID || sim.SecretKey != simulator.DevSecretKey {
		t.Errorf("credentials %q %q", sim.SecretID, sim.SecretKey)
	}
	if sim.URL != "http://"+sim.Endpoint || !strings.HasPrefix(sim.Endpoint, "127.0.0.1:") {
		t.Errorf("URL %q Endpoint %q", sim.URL, sim.Endpoint)
	}

	t.Run("SDK client reaches it", func(t *testing.T) {
		req := tchttp.NewCommonRequest(faceid.Service, faceid.APIVersion, faceid.Action)
		if err := req.SetActionParameters(map[string]any{"RedirectURL": "https://example.com/cb"}); err != nil {
			t.Fatal(err)
		}
		if err := sim.Client(faceid.DefaultRegion).Send(req, tchttp.NewCommonResponse()); err != nil {
			t.Fatalf("Send: %v", err)
		}
		if st := sim.Stats(); st.ByCode[simulator.CodeOK] != 1 {
			t.Errorf("stats %+v", st)
		}
	})

	t.Run("admin endpoint at URL", func(t *testing.T) {
		resp, err := http.Get(sim.URL + "/_sim/stats")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Errorf("GET /_sim/stats: %s", resp.Status)
		}
	})
}

func TestStartBadConfig(t *testing.T) {
	ft := &fakeTB{TB: t}
	func() {
		defer func() { _ = recover() }()
		faceidtest.Start(ft, simulator.Config{SecretID: "only-an-id"})
	}()
	if !ft.fatal {
		t.Error("Start accepted a config New refuses")
	}
}

// fakeTB records Fatalf instead of stopping the real test.
type fakeTB struct {
	testing.TB
	fatal bool
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Fatalf(string, ...any) {
	f.fatal = true
	panic("fatal")
}
