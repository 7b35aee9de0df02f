package simulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"mime"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/faceidq/faceidq/internal/faceid"
	"github.com/faceidq/faceidq/internal/tc3"
)

// VerificationURLPrefix is what the simulator puts before a BizToken to make the
// VerificationURL, as the real API does.
const VerificationURLPrefix = "https://intl.faceid.qq.com/reflect/?token="

// Pseudo-codes counted in Stats.ByCode next to the API's error codes.
const (
	// CodeOK counts successes (a BizToken was issued).
	CodeOK = "OK"
	// CodeHTML502 counts the HTML 502 pages of an html502 outage.
	CodeHTML502 = "HTTP502"
	// CodeCanceled counts requests whose caller went away before the answer (body
	// read failed, or the context ended during the latency delay).
	CodeCanceled = "Canceled"
)

// Error codes of the API 3.0 gateway answered by the simulator itself (the others come
// from tc3.Verify and faceid.Validate).
const (
	codeInternalError     = "InternalError"
	codeInvalidAction     = "InvalidAction"
	codeNoSuchVersion     = "NoSuchVersion"
	codeMissingParameter  = "MissingParameter"
	codeInvalidParameter  = "InvalidParameter"
	codeRequestLimit      = "RequestLimitExceeded"
	codeRequestSizeLimit  = "RequestSizeLimitExceeded"
	codeUnsupportedProto  = "UnsupportedProtocol"
	codeUnknownParameter  = "UnknownParameter"
	adminPrefix           = "/_sim/"
	headerAction          = "X-TC-Action"
	headerVersion         = "X-TC-Version"
	headerRegion          = "X-TC-Region"
	second                = int64(time.Second)
	maxPooledBody         = 1 << 20
	internalErrorMessage  = "An internal error has occurred. Retry your request, but if the problem persists, contact us."
	html502Page           = "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>stgw</center>\r\n</body>\r\n</html>\r\n"
	requestLimitMessageFm = "Your current request times equals to `%d` in a second, which exceeds the frequency limit `%d` for a second. Please reduce the frequency of calls."
)

// accountMessages are the texts of the account-level codes the API documents.
var accountMessages = map[string]string{
	"UnauthorizedOperation.Arrears":       "The account is in arrears.",
	"UnauthorizedOperation.Nonactivated":  "The service has not been activated.",
	"UnauthorizedOperation.Activating":    "Activating the service.",
	"UnauthorizedOperation.ActivateError": "Service activation exception.",
	"UnauthorizedOperation.NonAuthorize":  "Identity verification has not been completed for the account.",
	"UnauthorizedOperation":               "Unauthorized operation.",
}

var (
	ctJSON = []string{"application/json"}
	ctHTML = []string{"text/html"}
)

// Server is the simulator: an http.Handler serving the action on "/" and the admin
// endpoints under /_sim/. It is safe for concurrent use. Create it with New.
type Server struct {
	cfg    Config
	epoch  time.Time // offsets in the windows are nanoseconds since epoch
	admin  *http.ServeMux
	lookup func(secretID string) (string, bool)

	faults   atomic.Pointer[faultState]
	changeMu sync.Mutex
	changed  chan struct{} // closed and replaced on every fault change

	inFlight atomic.Int64

	mu        sync.Mutex // guards everything below
	last      int64      // latest offset recorded: windows need non-decreasing times
	limits    budgets    // the rate limit of each SecretId and Host, and their counters
	received  window     // every arrival, for stats
	admittedW window     // admitted arrivals since the last stats reset
	st        counters
	faultRNG  *rand.Rand // InternalError draws and jitter
	idRNG     *rand.Rand // BizToken and RequestId values

	flowsOnce sync.Once
	flowsV    *flows // the persons' flows and the Get action (flow.go)
}

type counters struct {
	requests, admitted, refused int64
	byCode                      map[string]int64
	maxReceived, maxAdmitted    int
	since, first, last          time.Time
}

// New returns a simulator configured by cfg (see Config for the defaults), or an
// error naming the bad field.
func New(cfg Config) (*Server, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	now := cfg.Now()
	s := &Server{
		cfg:       cfg,
		epoch:     now,
		changed:   make(chan struct{}),
		limits:    newBudgets(cfg.SharedLimit),
		received:  newWindow(second),
		admittedW: newWindow(second),
		st:        counters{byCode: map[string]int64{}, since: now},
		faultRNG:  rand.New(rand.NewPCG(cfg.Seed, 0x9e3779b97f4a7c15)),
		idRNG:     rand.New(rand.NewPCG(cfg.Seed, 0xd1b54a32d192ed03)),
	}
	if len(cfg.Credentials) == 0 {
		s.lookup = func(id string) (string, bool) {
			if id == cfg.SecretID {
				return cfg.SecretKey, true
			}
			return "", false
		}
	} else {
		creds := map[string]string{cfg.SecretID: cfg.SecretKey}
		for _, c := range cfg.Credentials {
			creds[c.SecretID] = c.SecretKey
		}
		s.lookup = func(id string) (string, bool) { k, ok := creds[id]; return k, ok }
	}
	s.faults.Store(newFaultState(cfg.Faults, now))
	s.admin = s.adminMux()
	return s, nil
}

// Seed returns the seed of the simulator's random choices: Config.Seed, or the one
// drawn when it was 0. A new simulator with this seed repeats the run.
func (s *Server) Seed() uint64 { return s.cfg.Seed }

// Credential returns the SecretId and SecretKey the simulator accepts (besides
// Config.Credentials).
func (s *Server) Credential() (secretID, secretKey string) { return s.cfg.SecretID, s.cfg.SecretKey }

// Rate returns the number of requests admitted in any sliding second, 0 for no limit,
// per action, SecretId and Host (one for all with Config.SharedLimit).
//
// A window is a half-open interval of one second, (t−1s, t]. A request arriving at t
// is admitted when fewer than Rate requests were admitted in (t−1s, t]; a request
// admitted at 0 s no longer counts at exactly 1 s. Hence no window of one second, at
// any position, ever holds more than Rate admitted requests, and a caller pacing one
// request every 1/Rate s is never refused. Only admitted requests fill the window:
// refused ones do not extend the penalty. Times come from Config.Now; arrivals recorded
// out of order by a few microseconds (concurrent handlers) are clamped to the latest
// recorded time. Stats.MaxInAnySecond and Stats.MaxAdmittedInAnySecond are the exact
// maxima over all such windows, computed on the same definition.
func (s *Server) Rate() int { return max(s.cfg.Rate, 0) }

func newFaultState(f Faults, now time.Time) *faultState {
	st := &faultState{Faults: f}
	if f.Outage != OutageNone && f.OutageFor > 0 {
		st.until = now.Add(f.OutageFor)
	}
	return st
}

// SetFaults replaces the injected faults; an OutageFor counts from now. It returns an
// error, and changes nothing, when a value is out of range.
func (s *Server) SetFaults(f Faults) error {
	if err := f.validate(); err != nil {
		return fmt.Errorf("simulator: %w", err)
	}
	s.faults.Store(newFaultState(f, s.cfg.Now()))
	s.changeMu.Lock()
	close(s.changed)
	s.changed = make(chan struct{})
	s.changeMu.Unlock()
	return nil
}

// Faults returns the faults in force: an outage that ended by itself reads as none.
func (s *Server) Faults() Faults {
	f := s.faults.Load()
	out := f.Faults
	if f.outage(s.cfg.Now()) == OutageNone {
		out.Outage, out.OutageFor = OutageNone, 0
	}
	return out
}

// changes returns a channel closed at the next fault change.
func (s *Server) changes() <-chan struct{} {
	s.changeMu.Lock()
	defer s.changeMu.Unlock()
	return s.changed
}

// ServeHTTP serves the action on "/" and the admin endpoints under /_sim/ (see
// AdminHandler); any other path is 404.
//
// POST / with the API 3.0 headers (X-TC-Action, X-TC-Version, X-TC-Region,
// X-TC-Timestamp, Authorization, Content-Type: application/json), exactly what the
// official SDK sends with HttpProfile.Scheme "HTTP" and Endpoint "127.0.0.1:port".
// Every answer is HTTP 200 with the real envelope, as the gateway does:
//
//	{"Response":{"BizToken":"81EEF678-…","VerificationURL":"https://intl.faceid.qq.com/reflect/?token=81EEF678-…","RequestId":"b16194cd-…"}}
//	{"Response":{"Error":{"Code":"AuthFailure.SignatureFailure","Message":"…"},"RequestId":"…"}}
//
// except during an html502 outage (502 with an HTML page) or a refuse outage (no
// answer). BizToken and RequestId are version 4 UUIDs drawn from the seeded generator.
//
// A request to "/" is checked in this order; the first failure is the answer:
//
//  1. Outage: refuse drops the connection (uncounted); html502 answers the page.
//  2. Method: anything but POST is UnsupportedProtocol.
//  3. Size: a body over MaxBodyBytes (10 MB) is RequestSizeLimitExceeded.
//  4. Signature (package tc3, service faceid, ±300 s; the host signed with or
//     without its port, as the Go and Node.js SDKs differ): MissingParameter,
//     InvalidParameter (timestamp), AuthFailure.InvalidAuthorization,
//     AuthFailure.SecretIdNotFound, AuthFailure.SignatureExpire,
//     AuthFailure.SignatureFailure.
//  5. Account fault: with Faults.AccountError set, every correctly signed request is
//     answered that code (e.g. UnauthorizedOperation.Arrears), without using quota.
//  6. Action and Version: MissingParameter, InvalidAction, NoSuchVersion.
//  7. Rate limit: RequestLimitExceeded (see Rate).
//  8. Region (X-TC-Region, one of faceid.Regions): MissingParameter, UnsupportedRegion.
//  9. Content-Type application/json, JSON body: InvalidParameter for bad JSON or a
//     value of the wrong type, UnknownParameter for a name the action does not have
//     (names match exactly, in the body and in Config).
//  10. faceid.Validate: MissingParameter, InvalidParameter, InvalidParameterValue.
//  11. InternalError fault: with probability Faults.InternalErrorRate.
//  12. Success: a new BizToken.
//
// Every request to "/" is counted as an arrival at the time it was received
// (Config.Now when the handler starts), except the connections a refuse outage drops.
// The rate limiter, like the real gateway's frequency limit, applies to signed
// requests of this action: those that pass steps 1 to 6. A request it admits uses
// quota even if a later step fails; a request it refuses uses none. The latency fault
// then delays the answer, whatever it is: the arrival was counted and admitted (or
// not) before the delay. A caller that goes away during the delay gets no answer and
// is counted as Canceled.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, adminPrefix) {
		s.admin.ServeHTTP(w, r)
		return
	}
	if r.URL.Path == VerifyPath {
		s.serveVerify(w, r)
		return
	}
	if r.URL.Path != "/" {
		http.NotFound(w, r)
		return
	}
	s.inFlight.Add(1)
	defer s.inFlight.Add(-1)
	at := s.arrivedAt(r)
	f := s.faults.Load()

	switch f.outage(at) {
	case OutageRefuse:
		s.mu.Lock()
		s.st.refused++
		s.mu.Unlock()
		abort(w)
		return
	case OutageHTML502:
		d := s.arrive(at, f, budgetKey{}, false, false)
		if !wait(r.Context(), d.delay) {
			s.count(CodeCanceled)
			abort(w)
			return
		}
		w.Header()["Content-Type"] = ctHTML
		w.WriteHeader(http.StatusBadGateway)
		io.WriteString(w, html502Page)
		s.count(CodeHTML502)
		return
	}

	if r.Header.Get(headerAction) == faceid.ActionGet {
		s.serveGet(w, r, f)
		return
	}

	buf := bodyPool.Get().(*bytes.Buffer)
	buf.Reset()
	defer func() {
		if buf.Cap() <= maxPooledBody {
			bodyPool.Put(buf)
		}
	}()
	code, msg := s.precheck(r, at, f, buf)
	d := s.arrive(at, f, budgetOf(r), code == "", true)
	if code == CodeCanceled {
		s.count(CodeCanceled)
		abort(w)
		return
	}
	if code == "" && !d.admitted {
		code, msg = codeRequestLimit, fmt.Sprintf(requestLimitMessageFm, d.inWindow+1, s.cfg.Rate)
	}
	if code == "" {
		code, msg = s.postcheck(r, buf.Bytes())
	}
	if code == "" && d.internalError {
		code, msg = codeInternalError, internalErrorMessage
	}
	if !wait(r.Context(), d.delay) {
		s.count(CodeCanceled)
		abort(w)
		return
	}
	out := outPool.Get().(*[]byte)
	b := (*out)[:0]
	if code == "" {
		b = append(b, `{"Response":{"BizToken":"`...)
		b = append(b, d.bizToken[:]...)
		b = append(b, `","VerificationURL":"`...)
		b = append(b, s.verificationURLPrefix()...)
		b = append(b, d.bizToken[:]...)
		b = append(b, `","RequestId":"`...)
		b = append(b, d.requestID[:]...)
		b = append(b, `"}}`...)
		code = CodeOK
		s.minted(string(d.bizToken[:]), buf.Bytes(), secretIDOf(r.Header.Get("Authorization")))
	} else {
		b = append(b, `{"Response":{"Error":{"Code":`...)
		b = appendJSONString(b, code)
		b = append(b, `,"Message":`...)
		b = appendJSONString(b, msg)
		b = append(b, `},"RequestId":"`...)
		b = append(b, d.requestID[:]...)
		b = append(b, `"}}`...)
	}
	h := w.Header()
	h["Content-Type"] = ctJSON
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	w.WriteHeader(http.StatusOK)
	w.Write(b)
	*out = b
	outPool.Put(out)
	s.count(code)
}

var (
	bodyPool = sync.Pool{New: func() any { return new(bytes.Buffer) }}
	outPool  = sync.Pool{New: func() any { b := make([]byte, 0, 256); return &b }}
)

// precheck runs the checks before the rate limiter: method, size, signature, account,
// action and version. It reads the body into buf.
func (s *Server) precheck(r *http.Request, at time.Time, f *faultState, buf *bytes.Buffer) (code, msg string) {
	if r.Method != http.MethodPost {
		return codeUnsupportedProto, "The simulator accepts only POST requests with a JSON body, not " + r.Method + "."
	}
	tooLarge := "The request body is larger than the 10 MB limit."
	if r.ContentLength > MaxBodyBytes {
		return codeRequestSizeLimit, tooLarge
	}
	if r.ContentLength > 0 {
		buf.Grow(int(r.ContentLength))
	}
	n, err := buf.ReadFrom(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil {
		return CodeCanceled, ""
	}
	if n > MaxBodyBytes {
		return codeRequestSizeLimit, tooLarge
	}
	if err := tc3.Verify(r, buf.Bytes(), faceid.Service, s.lookup, at); err != nil {
		var e *tc3.Error
		if errors.As(err, &e) {
			return e.Code, e.Message
		}
		return "AuthFailure.SignatureFailure", "The provided credentials could not be validated."
	}
	if f.AccountError != "" {
		m, ok := accountMessages[f.AccountError]
		if !ok {
			m = "Account-level error injected by the simulator."
		}
		return f.AccountError, m
	}
	switch a := r.Header.Get(headerAction); a {
	case faceid.Action:
	case "":
		return codeMissingParameter, "The request is missing a required parameter `Action` (header X-TC-Action)."
	default:
		return codeInvalidAction, "The action `" + a + "` is not found; this endpoint serves " + faceid.Action + "."
	}
	switch v := r.Header.Get(headerVersion); v {
	case faceid.APIVersion:
	case "":
		return codeMissingParameter, "The request is missing a required parameter `Version` (header X-TC-Version)."
	default:
		return codeNoSuchVersion, "The API version `" + v + "` does not exist; use " + faceid.APIVersion + "."
	}
	return "", ""
}

// postcheck runs the checks of an admitted request: region, content type, body.
func (s *Server) postcheck(r *http.Request, body []byte) (code, msg string) {
	var fe *faceid.FieldError
	if err := faceid.ValidateRegion(r.Header.Get(headerRegion)); err != nil {
		if errors.As(err, &fe) {
			return fe.Code, fe.Error()
		}
		return codeInvalidParameter, err.Error()
	}
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		return codeInvalidParameter, "The Content-Type must be application/json."
	}
	var p faceid.ApplyWebVerificationBizTokenIntlRequestParams
	if code, msg := decodeParams(body, &p); code != "" {
		return code, msg
	}
	if err := faceid.Validate(&p); err != nil {
		if errors.As(err, &fe) {
			return fe.Code, fe.Error()
		}
		return codeInvalidParameter, err.Error()
	}
	return "", ""
}

func isJSON(ct string) bool {
	if ct == "application/json" {
		return true
	}
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && mt == "application/json"
}

// draws is what arrive decided and drew for one request.
type draws struct {
	admitted      bool
	inWindow      int // admitted arrivals in the window when a request was refused
	internalError bool
	delay         time.Duration
	requestID     [36]byte
	bizToken      [36]byte
}

// arrive records an arrival at at and, under the same lock, decides admission under
// k's limit (when tryAdmit) and draws the random values, so that the order of
// arrivals fixes them.
func (s *Server) arrive(at time.Time, f *faultState, k budgetKey, tryAdmit, ids bool) draws {
	var d draws
	s.mu.Lock()
	defer s.mu.Unlock()
	t := int64(at.Sub(s.epoch))
	if t < s.last {
		t = s.last
	}
	s.last = t

	s.st.requests++
	if s.st.first.IsZero() {
		s.st.first = at
	}
	s.st.last = at
	s.received.advance(t)
	s.received.add(t)
	s.st.maxReceived = max(s.st.maxReceived, s.received.total)

	if tryAdmit {
		d.admitted, d.inWindow = s.limits.admit(k, t, s.cfg.Rate)
		if d.admitted {
			s.st.admitted++
			s.admittedW.advance(t)
			s.admittedW.add(t)
			s.st.maxAdmitted = max(s.st.maxAdmitted, s.admittedW.total)
			if f.InternalErrorRate > 0 {
				d.internalError = s.faultRNG.Float64() < f.InternalErrorRate
			}
			putUUID(&d.bizToken, s.idRNG, true)
		}
	}
	if ids {
		putUUID(&d.requestID, s.idRNG, false)
	}
	d.delay = f.Latency
	if f.Jitter > 0 {
		d.delay += time.Duration(s.faultRNG.Int64N(2*int64(f.Jitter)+1)) - f.Jitter
	}
	d.delay = max(d.delay, 0)
	return d
}

// count records the answer of a request.
func (s *Server) count(code string) {
	s.mu.Lock()
	s.st.byCode[code]++
	s.mu.Unlock()
}

// wait sleeps for d unless ctx ends first, and reports whether it slept the whole d.
func wait(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// abort drops the connection without an answer (a reset, as close as a handler gets
// to a refused connection).
func abort(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			if tcp, ok := conn.(*net.TCPConn); ok {
				_ = tcp.SetLinger(0)
			}
			_ = conn.Close()
			return
		}
	}
	panic(http.ErrAbortHandler)
}

const hexDigits = "0123456789abcdef"

// putUUID writes a random (version 4) UUID drawn from rng into dst, in upper case for
// BizTokens and lower case for RequestIds, as the real API's examples show.
func putUUID(dst *[36]byte, rng *rand.Rand, upper bool) {
	hi, lo := rng.Uint64(), rng.Uint64()
	hi = hi&^(0xf<<12) | 0x4<<12 // version 4
	lo = lo&^(0x3<<62) | 0x2<<62 // RFC 4122 variant
	digits := hexDigits
	if upper {
		digits = "0123456789ABCDEF"
	}
	j := 0
	for i := range 32 {
		if i == 8 || i == 12 || i == 16 || i == 20 {
			dst[j] = '-'
			j++
		}
		var nib uint64
		if i < 16 {
			nib = hi >> (60 - 4*i) & 0xf
		} else {
			nib = lo >> (60 - 4*(i-16)) & 0xf
		}
		dst[j] = digits[nib]
		j++
	}
}

// appendJSONString appends s as a JSON string.
func appendJSONString(b []byte, s string) []byte {
	q, err := json.Marshal(s)
	if err != nil { // cannot happen for a string
		return append(b, `""`...)
	}
	return append(b, q...)
}

type arrivalKey struct{}

// WithArrival returns a copy of ctx saying that its request reached the server at at.
// It is for a harness that simulates the network in front of the server: the server
// then counts the request (rate limit, statistics) at at instead of when its handler
// runs, which on a busy machine can be a few milliseconds later. at must come from
// the same clock as Config.Now.
func WithArrival(ctx context.Context, at time.Time) context.Context {
	return context.WithValue(ctx, arrivalKey{}, at)
}

// arrivedAt returns when r reached the server: its WithArrival time, or now.
func (s *Server) arrivedAt(r *http.Request) time.Time {
	if at, ok := r.Context().Value(arrivalKey{}).(time.Time); ok {
		return at
	}
	return s.cfg.Now()
}
