package simulator

import (
	"bytes"
	"cmp"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/tc3"
)

// The person's flow: every BizToken the simulator mints is a flow that a person
// completes in a browser (VerifyPath, redirecting to the token's RedirectURL with
// token=<BizToken> appended, as Tencent does) or that a test completes with POST
// /_sim/complete. GetWebVerificationResultIntl answers for the tokens it minted:
// ErrorCode null until the flow is completed (an abandoned flow stays so), the
// recorded outcome afterwards, InvalidParameterValue.BizTokenExpired once
// Config.ResultWindow has passed since the mint, and
// InvalidParameterValue.BizTokenIllegal for a token it never minted. Completed
// answers carry fake media (MediaPattern) where Tencent sends the person's video,
// best frame and document images, so that callers can prove they drop them.

// VerifyPath is the simulator's own verification page: <PublicURL>/verify?token=….
const VerifyPath = "/verify"

// Defaults of the flow settings of Config.
const (
	// DefaultFlowTimeout is how long after the mint a person can complete a flow.
	DefaultFlowTimeout = 10 * time.Minute
	// DefaultResultWindow is how long after the mint a result can be fetched.
	DefaultResultWindow = 72 * time.Hour
	// DefaultMaxFlows bounds the flows kept in memory; the oldest go first.
	DefaultMaxFlows = 1 << 20
)

// MediaPattern is the fake media of a completed answer (VideoBase64,
// BestFrameBase64 and every OCRResult image): base64 of a recognizable text, so a
// test can grep any store, log or answer for it.
var MediaPattern = base64.StdEncoding.EncodeToString(bytes.Repeat([]byte("FACEIDQ-SIMULATED-BIOMETRIC-MEDIA:"), 8))

// Failure codes the seeded outcome draws from (the H5 table's common ones).
var flowFailures = []struct {
	code int64
	msg  string
}{
	{1001, "Liveness detection failed."},
	{1004, "The face comparison failed: not the same person."},
	{16, "The retry limit was reached."},
	{1409, "Verification process timed out."},
}

// Flow is what the simulator recorded of one BizToken's flow.
type Flow struct {
	BizToken    string    `json:"BizToken"`
	RedirectURL string    `json:"RedirectURL"`
	MintedAt    time.Time `json:"MintedAt"`
	// Completed: the person finished; ErrorCode and Similarity are the outcome.
	Completed  bool      `json:"Completed"`
	Abandoned  bool      `json:"Abandoned"`
	ErrorCode  int64     `json:"ErrorCode"`
	ErrorMsg   string    `json:"ErrorMsg"`
	Similarity float64   `json:"Similarity"`
	DoneAt     time.Time `json:"DoneAt,omitzero"`
	// MintedBy is the SecretId that minted the token; only it can fetch the
	// result. FetchedBy is the SecretId of the last answered fetch.
	MintedBy  string `json:"MintedBy"`
	FetchedBy string `json:"FetchedBy,omitempty"`

	extra string
}

// Completion is how a flow ends (POST /_sim/complete).
type Completion struct {
	BizToken   string   `json:"BizToken"`
	ErrorCode  *int64   `json:"ErrorCode"`
	ErrorMsg   string   `json:"ErrorMsg"`
	Similarity *float64 `json:"Similarity"`
	// Abandon: the person left without finishing; Get keeps answering ErrorCode null.
	Abandon bool `json:"Abandon"`
}

// Errors of Complete.
var (
	ErrUnknownToken = errors.New("simulator: unknown BizToken")
	ErrFlowDone     = errors.New("simulator: the flow is already completed or abandoned")
	ErrFlowExpired  = errors.New("simulator: the flow's time to complete has passed")
)

// flows holds the flows and the Get action's limiter and counters.
type flows struct {
	publicURL atomic.Pointer[string] // the VerificationURL prefix set by SetPublicURL

	mu    sync.Mutex
	m     map[string]*Flow
	order []string // mint order, for eviction
	rng   *rand.Rand

	last      int64
	limits    budgets
	received  window
	admittedW window
	st        ActionStats
}

// ActionStats are the counters of one action (Stats.ByAction).
type ActionStats struct {
	Requests               int64            `json:"requests"`
	Admitted               int64            `json:"admitted"`
	ByCode                 map[string]int64 `json:"by_code"`
	MaxInAnySecond         int              `json:"max_in_any_second"`
	MaxAdmittedInAnySecond int              `json:"max_admitted_in_any_second"`
}

func newFlows(seed uint64, shared bool) *flows {
	return &flows{
		m: map[string]*Flow{}, rng: rand.New(rand.NewPCG(seed, 0x2545f4914f6cdd1d)),
		limits: newBudgets(shared), received: newWindow(second), admittedW: newWindow(second),
		st: ActionStats{ByCode: map[string]int64{}},
	}
}

// fl returns the flows, created on first use (New need not know of them).
func (s *Server) fl() *flows {
	s.flowsOnce.Do(func() { s.flowsV = newFlows(s.cfg.Seed, s.cfg.SharedLimit) })
	return s.flowsV
}

// verificationURLPrefix is what precedes a BizToken in a VerificationURL: the
// simulator's own page when Config.PublicURL is set, Tencent's shape otherwise.
func (s *Server) verificationURLPrefix() string {
	if p := s.fl().publicURL.Load(); p != nil {
		return *p
	}
	if s.cfg.PublicURL != "" {
		return strings.TrimRight(s.cfg.PublicURL, "/") + VerifyPath + "?token="
	}
	return VerificationURLPrefix
}

// flowNow is the flows' clock (Config.FlowNow).
func (s *Server) flowNow() time.Time {
	if s.cfg.FlowNow != nil {
		return s.cfg.FlowNow()
	}
	return s.cfg.Now()
}

// SetPublicURL sets Config.PublicURL once the simulator's address is known (a
// listener on port 0).
func (s *Server) SetPublicURL(u string) {
	p := strings.TrimRight(u, "/") + VerifyPath + "?token="
	s.fl().publicURL.Store(&p)
}

// minted records a new BizToken's flow from its Apply body, minted by secretID.
func (s *Server) minted(token string, body []byte, secretID string) {
	at := s.flowNow()
	var p struct {
		RedirectURL string
		Extra       string
	}
	_ = json.Unmarshal(body, &p) // the body passed validation
	f := s.fl()
	f.mu.Lock()
	defer f.mu.Unlock()
	f.m[token] = &Flow{BizToken: token, RedirectURL: p.RedirectURL, MintedAt: at, MintedBy: secretID, extra: p.Extra}
	f.order = append(f.order, token)
	window := cmp.Or(s.cfg.ResultWindow, DefaultResultWindow)
	for len(f.order) > 0 {
		old := f.m[f.order[0]]
		if old != nil && len(f.order) <= cmp.Or(s.cfg.MaxFlows, DefaultMaxFlows) && at.Sub(old.MintedAt) <= window {
			break
		}
		delete(f.m, f.order[0])
		f.order = f.order[1:]
	}
}

// Flow returns what the simulator recorded of token's flow.
func (s *Server) Flow(token string) (Flow, bool) {
	f := s.fl()
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.m[token]
	if !ok {
		return Flow{}, false
	}
	return *fl, true
}

// Complete ends token's flow as c says; without ErrorCode the outcome is drawn from
// the seeded generator (mostly passes, with a similarity, else a common failure). It
// returns the URL the person is sent to: RedirectURL with token=<BizToken> appended.
func (s *Server) Complete(c Completion) (string, error) {
	now := s.flowNow()
	f := s.fl()
	f.mu.Lock()
	defer f.mu.Unlock()
	fl, ok := f.m[c.BizToken]
	switch {
	case !ok:
		return "", ErrUnknownToken
	case fl.Completed || fl.Abandoned:
		return "", ErrFlowDone
	case now.Sub(fl.MintedAt) > cmp.Or(s.cfg.FlowTimeout, DefaultFlowTimeout):
		return "", ErrFlowExpired
	}
	fl.DoneAt = now
	if c.Abandon {
		fl.Abandoned = true
		return appendToken(fl.RedirectURL, fl.BizToken), nil
	}
	fl.Completed = true
	switch {
	case c.ErrorCode != nil:
		fl.ErrorCode, fl.ErrorMsg = *c.ErrorCode, cmp.Or(c.ErrorMsg, "Simulated outcome.")
		if *c.ErrorCode == 0 {
			fl.ErrorMsg = "Success"
		}
	case f.rng.Float64() < 0.8:
		fl.ErrorCode, fl.ErrorMsg = 0, "Success"
	default:
		e := flowFailures[f.rng.IntN(len(flowFailures))]
		fl.ErrorCode, fl.ErrorMsg = e.code, e.msg
	}
	switch {
	case c.Similarity != nil:
		fl.Similarity = *c.Similarity
	case fl.ErrorCode == 0:
		fl.Similarity = float64(7000+f.rng.IntN(2900)) / 100
	default:
		fl.Similarity = float64(1000+f.rng.IntN(5900)) / 100
	}
	return appendToken(fl.RedirectURL, fl.BizToken), nil
}

// appendToken appends token=<token> to u's query, as Tencent does.
func appendToken(u, token string) string {
	p, err := url.Parse(u)
	if err != nil {
		return u
	}
	q := p.Query()
	q.Set("token", token)
	p.RawQuery = q.Encode()
	return p.String()
}

// serveVerify is the person's page: it completes the flow (seeded outcome, or the
// query's outcome=pass|fail|abandon, code=…, similarity=…) and redirects.
func (s *Server) serveVerify(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	c := Completion{BizToken: q.Get("token")}
	switch q.Get("outcome") {
	case "pass":
		c.ErrorCode = new(int64)
	case "fail":
		code := int64(1001)
		if n, err := strconv.ParseInt(q.Get("code"), 10, 64); err == nil && n != 0 {
			code = n
		}
		c.ErrorCode = &code
	case "abandon":
		c.Abandon = true
	}
	if v, err := strconv.ParseFloat(q.Get("similarity"), 64); err == nil {
		c.Similarity = &v
	}
	to, err := s.Complete(c)
	switch {
	case errors.Is(err, ErrUnknownToken):
		http.Error(w, "unknown verification token", http.StatusNotFound)
		return
	case errors.Is(err, ErrFlowExpired):
		http.Error(w, "this verification link has expired", http.StatusGone)
		return
	case errors.Is(err, ErrFlowDone):
		fl, _ := s.Flow(c.BizToken)
		to = appendToken(fl.RedirectURL, fl.BizToken)
	}
	http.Redirect(w, r, to, http.StatusFound)
}

// postComplete is POST /_sim/complete.
func (s *Server) postComplete(w http.ResponseWriter, r *http.Request) {
	var c Completion
	dec := json.NewDecoder(io.LimitReader(r.Body, maxAdminBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		writeAdminError(w, fmt.Errorf("simulator: POST /_sim/complete: %w", err))
		return
	}
	to, err := s.Complete(c)
	switch {
	case errors.Is(err, ErrUnknownToken):
		writeAdminJSON(w, http.StatusNotFound, map[string]string{"error": err.Error()})
	case err != nil:
		writeAdminJSON(w, http.StatusConflict, map[string]string{"error": err.Error()})
	default:
		fl, _ := s.Flow(c.BizToken)
		writeAdminJSON(w, http.StatusOK, map[string]any{"RedirectURL": to, "Flow": fl})
	}
}

// serveGet answers GetWebVerificationResultIntl: signature, account fault, version,
// its own sliding-second limit, region, body, then the flow's state.
func (s *Server) serveGet(w http.ResponseWriter, r *http.Request, fs *faultState) {
	at := s.arrivedAt(r)
	f := s.fl()
	var rid [36]byte
	f.mu.Lock()
	putUUID(&rid, f.rng, false)
	f.mu.Unlock()
	code, msg, body := s.checkGet(r, at, fs)
	k := budgetOf(r)
	if code == "" && !f.admit(at, s.epoch, s.cfg.Rate, k) {
		code, msg = codeRequestLimit, fmt.Sprintf(requestLimitMessageFm, s.cfg.Rate+1, s.cfg.Rate)
	}
	var resp map[string]any
	if code == "" {
		var p faceid.GetWebVerificationResultIntlRequestParams
		dec := json.NewDecoder(bytes.NewReader(body))
		dec.DisallowUnknownFields()
		switch err := dec.Decode(&p); {
		case err != nil:
			code, msg = codeInvalidParameter, "The request body is not a valid GetWebVerificationResultIntl request."
		case p.BizToken == nil || *p.BizToken == "":
			code, msg = codeMissingParameter, "The request is missing a required parameter `BizToken`."
		default:
			resp, code, msg = s.getAnswer(*p.BizToken, k.secretID, s.flowNow())
		}
	}
	if code == "" && fs.InternalErrorRate > 0 {
		f.mu.Lock()
		ie := f.rng.Float64() < fs.InternalErrorRate
		f.mu.Unlock()
		if ie {
			code, msg = codeInternalError, internalErrorMessage
		}
	}
	if !wait(r.Context(), fs.Latency) {
		f.count(CodeCanceled)
		abort(w)
		return
	}
	var out any
	if code != "" {
		out = map[string]any{"Response": map[string]any{"Error": map[string]string{"Code": code, "Message": msg}, "RequestId": string(rid[:])}}
	} else {
		resp["RequestId"] = string(rid[:])
		out = map[string]any{"Response": resp}
		code = CodeOK
	}
	b, _ := json.Marshal(out)
	w.Header()["Content-Type"] = ctJSON
	w.Header()["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	f.count(code)
}

// checkGet runs the checks before the limiter and reads the body.
func (s *Server) checkGet(r *http.Request, at time.Time, fs *faultState) (code, msg string, body []byte) {
	if r.Method != http.MethodPost {
		return codeUnsupportedProto, "The simulator accepts only POST requests with a JSON body, not " + r.Method + ".", nil
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxAdminBody))
	if err != nil {
		return codeInvalidParameter, "The request body could not be read.", nil
	}
	if err := tc3.Verify(r, body, faceid.Service, s.lookup, at); err != nil {
		var e *tc3.Error
		if errors.As(err, &e) {
			return e.Code, e.Message, nil
		}
		return "AuthFailure.SignatureFailure", "The provided credentials could not be validated.", nil
	}
	if fs.AccountError != "" {
		m, ok := accountMessages[fs.AccountError]
		if !ok {
			m = "Account-level error injected by the simulator."
		}
		return fs.AccountError, m, nil
	}
	if v := r.Header.Get(headerVersion); v != faceid.APIVersion {
		return codeNoSuchVersion, "The API version `" + v + "` does not exist; use " + faceid.APIVersion + ".", nil
	}
	if err := faceid.ValidateRegion(r.Header.Get(headerRegion)); err != nil {
		var fe *faceid.FieldError
		if errors.As(err, &fe) {
			return fe.Code, fe.Error(), nil
		}
		return codeInvalidParameter, err.Error(), nil
	}
	return "", "", body
}

// getAnswer is the Response of a Get for token by secretID at at. A token is
// known only to the account that minted it.
func (s *Server) getAnswer(token, secretID string, at time.Time) (map[string]any, string, string) {
	f := s.fl()
	f.mu.Lock()
	fl, ok := f.m[token]
	ok = ok && fl.MintedBy == secretID
	var c Flow
	if ok {
		fl.FetchedBy = secretID
		c = *fl
	}
	f.mu.Unlock()
	switch {
	case !ok:
		return nil, "InvalidParameterValue.BizTokenIllegal", "Invalid BizToken."
	case at.Sub(c.MintedAt) > cmp.Or(s.cfg.ResultWindow, DefaultResultWindow):
		return nil, "InvalidParameterValue.BizTokenExpired", "BizToken expired."
	}
	if !c.Completed {
		return map[string]any{"ErrorCode": nil, "ErrorMsg": nil, "VerificationDetailList": []any{},
			"VideoBase64": nil, "BestFrameBase64": nil, "OCRResult": []any{}, "Extra": c.extra}, "", ""
	}
	pass := c.ErrorCode == 0
	detail := map[string]any{
		"ErrorCode": c.ErrorCode, "ErrorMsg": c.ErrorMsg,
		"LivenessErrorCode": 0, "LivenessErrorMsg": "Success",
		"CompareErrorCode": c.ErrorCode, "CompareErrorMsg": c.ErrorMsg,
		"ReqTimestamp": c.DoneAt.UnixMilli(), "Similarity": c.Similarity,
		"Seq": c.BizToken, "LivenessInfoTag": []string{},
	}
	return map[string]any{
		"ErrorCode": c.ErrorCode, "ErrorMsg": c.ErrorMsg,
		"VerificationDetailList": []any{detail},
		"VideoBase64":            MediaPattern, "BestFrameBase64": MediaPattern,
		"OCRResult": []any{map[string]any{
			"IsPass": pass, "CardImageBase64": MediaPattern, "CardCutImageBase64": MediaPattern,
			"CardBackImageBase64": MediaPattern, "CardBackCutImageBase64": MediaPattern, "HeadImageBase64": MediaPattern,
			"NormalCardInfo": map[string]any{"HKIDCard": map[string]any{
				"CnName": "模擬", "EnName": "SIMULATED PERSON", "IdNum": "S000000(0)", "Portrait": MediaPattern}},
			"WarnCardInfos": []int64{}, "RequestId": c.BizToken,
		}},
		"Extra": c.extra,
	}, "", ""
}

// admit records a Get arrival and decides admission under k's Get limit.
func (f *flows) admit(at, epoch time.Time, rate int, k budgetKey) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	t := max(int64(at.Sub(epoch)), f.last)
	f.last = t
	f.st.Requests++
	f.received.advance(t)
	f.received.add(t)
	f.st.MaxInAnySecond = max(f.st.MaxInAnySecond, f.received.total)
	if ok, _ := f.limits.admit(k, t, rate); !ok {
		return false
	}
	f.st.Admitted++
	f.admittedW.advance(t)
	f.admittedW.add(t)
	f.st.MaxAdmittedInAnySecond = max(f.st.MaxAdmittedInAnySecond, f.admittedW.total)
	return true
}

func (f *flows) count(code string) {
	f.mu.Lock()
	f.st.ByCode[code]++
	f.mu.Unlock()
}

// stats returns a copy of the Get counters, and those of its budgets.
func (f *flows) stats() (ActionStats, []BudgetStats) {
	f.mu.Lock()
	defer f.mu.Unlock()
	c := f.st
	c.ByCode = make(map[string]int64, len(f.st.ByCode))
	for k, v := range f.st.ByCode {
		c.ByCode[k] = v
	}
	return c, f.limits.appendStats(nil, faceid.ActionGet)
}

func (f *flows) reset() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.st = ActionStats{ByCode: map[string]int64{}}
	f.limits.resetStats()
	f.received.clear()
	f.admittedW.clear()
}
