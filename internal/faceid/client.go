package faceid

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common"
	tcerr "github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/errors"
	"github.com/tencentcloud/tencentcloud-sdk-go/tencentcloud/common/profile"
)

// Defaults applied by New.
const (
	DefaultTimeout  = 10 * time.Second
	DefaultLanguage = "en-US"
)

// requestClient is appended to the SDK's X-TC-RequestClient header.
const requestClient = "faceidq"

// maxMessageLen bounds APIError.Message (an HTML error page would otherwise be
// copied whole by the SDK's ParseJsonError message).
const maxMessageLen = 512

// Config configures a Client. Only SecretID and SecretKey are required.
type Config struct {
	// Endpoint is the upstream: a host[:port] such as
	// "faceid.intl.tencentcloudapi.com" (HTTPS), or a URL with an http or https
	// scheme and no path, such as "http://127.0.0.1:9000". Defaults to
	// DefaultEndpoint.
	Endpoint string
	// SecretID and SecretKey are the account's API credentials. Required; they
	// must not hold whitespace. They never appear in errors or in String output.
	SecretID, SecretKey string
	// Timeout bounds one call, through the call's context and the SDK's
	// whole-request timeout (rounded up to whole seconds). Defaults to 10s.
	Timeout time.Duration
	// Language is the X-TC-Language of every call, "en-US" or "zh-CN": the
	// language of the upstream's error messages. Defaults to "en-US".
	Language string
	// Transport carries every call. Defaults to a clone of
	// http.DefaultTransport keeping up to 64 idle connections per host (enough for
	// a worker pool at the upstream's 20 req/s with slow answers).
	Transport http.RoundTripper
}

// String renders c without its SecretKey.
func (c Config) String() string {
	return fmt.Sprintf("faceid.Config{Endpoint:%q SecretID:%q SecretKey:[redacted] Timeout:%s Language:%q}",
		c.Endpoint, c.SecretID, c.Timeout, c.Language)
}

// GoString renders c for %#v without its SecretKey.
func (c Config) GoString() string { return c.String() }

// Client calls ApplyWebVerificationBizTokenIntl through the SDK's common.Client,
// which signs each request with TC3-HMAC-SHA256. It keeps one common.Client per
// region (the SDK binds a region at Init), created on first use. The SDK's own
// retries (network failures, RequestLimitExceeded) and its region breaker are off:
// the worker owns retries and pacing. A Client is safe for concurrent use.
//
// Client does not support common.DefaultHttpClient: faceidq never sets it, and if a
// program does, the SDK shares that one http.Client between all its clients.
type Client struct {
	cred      *common.Credential
	profile   *profile.ClientProfile
	transport http.RoundTripper
	timeout   time.Duration
	endpoint  string // normalised host[:port]
	account   string
	redact    []string // strings never to let into an APIError message

	mu      sync.Mutex
	regions map[string]*common.Client
}

// New validates cfg, applies its defaults and returns a Client. It makes no call.
func New(cfg Config) (*Client, error) {
	if cfg.SecretID == "" || cfg.SecretKey == "" {
		return nil, errors.New("faceid: new client: SecretID and SecretKey are required")
	}
	if strings.ContainsFunc(cfg.SecretID, isSpaceOrControl) || strings.ContainsFunc(cfg.SecretKey, isSpaceOrControl) {
		return nil, errors.New("faceid: new client: SecretID or SecretKey holds whitespace or a control character (a trailing newline from a file?)")
	}
	if cfg.Timeout < 0 {
		return nil, fmt.Errorf("faceid: new client: negative Timeout %s", cfg.Timeout)
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	switch cfg.Language {
	case "":
		cfg.Language = DefaultLanguage
	case "en-US", "zh-CN":
	default:
		return nil, fmt.Errorf("faceid: new client: Language must be en-US or zh-CN, not %q", cfg.Language)
	}
	if cfg.Endpoint == "" {
		cfg.Endpoint = DefaultEndpoint
	}
	scheme, host, err := parseEndpoint(cfg.Endpoint)
	if err != nil {
		return nil, fmt.Errorf("faceid: new client: Endpoint %q: %w", cfg.Endpoint, err)
	}
	if cfg.Transport == nil {
		cfg.Transport = defaultTransport()
	}

	hp := profile.NewHttpProfile()
	hp.Scheme = strings.ToUpper(scheme)
	hp.Endpoint = host
	hp.ReqMethod = http.MethodPost
	hp.ReqTimeout = int(math.Ceil(cfg.Timeout.Seconds()))
	cp := profile.NewClientProfile()
	cp.HttpProfile = hp
	cp.Language = cfg.Language
	cp.DisableRegionBreaker = true
	cp.NetworkFailureMaxRetries = 0
	cp.RateLimitExceededMaxRetries = 0
	cp.UnsafeRetryOnConnectionFailure = false

	return &Client{
		cred:      common.NewCredential(cfg.SecretID, cfg.SecretKey),
		profile:   cp,
		transport: cfg.Transport,
		timeout:   cfg.Timeout,
		endpoint:  host,
		account:   accountDigest(cfg.SecretID),
		redact:    []string{cfg.SecretKey, cfg.SecretID},
		regions:   make(map[string]*common.Client, len(Regions)),
	}, nil
}

// parseEndpoint returns the scheme ("http" or "https") and the normalised
// host[:port] (lowercase, default port dropped) of an Endpoint.
func parseEndpoint(ep string) (scheme, host string, err error) {
	if strings.ContainsFunc(ep, isSpaceOrControl) {
		return "", "", errors.New("holds whitespace or a control character")
	}
	raw := ep
	if strings.Contains(ep, "://") {
		u, err := url.Parse(ep)
		if err != nil {
			return "", "", errors.New("not a URL")
		}
		scheme = strings.ToLower(u.Scheme)
		if scheme != "http" && scheme != "https" {
			return "", "", fmt.Errorf("scheme must be http or https, not %q", u.Scheme)
		}
		if u.User != nil || (u.Path != "" && u.Path != "/") || u.RawQuery != "" || u.Fragment != "" || u.ForceQuery {
			return "", "", errors.New("must be a scheme and host[:port] only (no user, path, query or fragment)")
		}
		raw = u.Host
	} else {
		scheme = "https"
		if strings.ContainsAny(ep, "/?#@") {
			return "", "", errors.New("must be a host[:port], or a URL with an http or https scheme")
		}
	}
	u, err := url.Parse(scheme + "://" + raw)
	if err != nil || u.Host != raw || u.Hostname() == "" {
		return "", "", errors.New("bad host[:port]")
	}
	h, port := strings.ToLower(u.Hostname()), u.Port()
	if port == "" || (scheme == "https" && port == "443") || (scheme == "http" && port == "80") {
		if strings.Contains(h, ":") { // IPv6 literal
			return scheme, "[" + h + "]", nil
		}
		return scheme, h, nil
	}
	return scheme, net.JoinHostPort(h, port), nil
}

func defaultTransport() http.RoundTripper {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConns = 256
	t.MaxIdleConnsPerHost = 64
	t.IdleConnTimeout = 90 * time.Second
	return t
}

func accountDigest(secretID string) string {
	sum := sha256.Sum256([]byte("faceidq account\x00" + secretID))
	return hex.EncodeToString(sum[:8])
}

func isSpaceOrControl(r rune) bool {
	return r <= ' ' || r == 0x7f || r == utf8.RuneError || strings.ContainsRune("\u0085\u00a0\u2028\u2029", r)
}

// Endpoint returns the upstream's normalised host[:port] (lowercase, without a
// default port), e.g. "faceid.intl.tencentcloudapi.com" or "127.0.0.1:9000".
func (c *Client) Endpoint() string { return c.endpoint }

// Account returns a short stable identifier of the account: 16 hex digits of a
// SHA-256 of the SecretID (never of the key). Together with Endpoint it names the
// global rate limiter shared by every process calling with these credentials.
func (c *Client) Account() string { return c.account }

// String renders the client without its credentials.
func (c *Client) String() string {
	return "faceid.Client{endpoint:" + c.endpoint + " account:" + c.account + "}"
}

// regionClient returns the SDK client bound to region, creating it on first use.
func (c *Client) regionClient(region string) *common.Client {
	c.mu.Lock()
	defer c.mu.Unlock()
	if cl, ok := c.regions[region]; ok {
		return cl
	}
	// NewCommonClient goes through WithProfile, which Send needs (notes §3.1).
	cl := common.NewCommonClient(c.cred, region, c.profile)
	cl.WithHttpTransport(c.transport)
	cl.WithRequestClient(requestClient)
	c.regions[region] = cl
	return cl
}

// Apply calls ApplyWebVerificationBizTokenIntl in region ("" means DefaultRegion)
// with p, once, within the Client's Timeout.
//
// An invalid region, or a nil p, is a *FieldError before any call. Apply does not
// run Validate: producers do before enqueueing, and the upstream has the last word.
// Every failure of the call is an *APIError (ClassOf its Code says what to do);
// when the caller's context was canceled or the call's deadline passed, the error
// also matches context.Canceled or context.DeadlineExceeded under errors.Is. A
// success always carries a BizToken and a VerificationURL.
func (c *Client) Apply(ctx context.Context, region string, p *ApplyWebVerificationBizTokenIntlRequestParams) (*ApplyWebVerificationBizTokenIntlResponseParams, error) {
	if region == "" {
		region = DefaultRegion
	}
	if err := ValidateRegion(region); err != nil {
		return nil, err
	}
	if p == nil {
		return nil, missing("RedirectURL", "is required")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()

	req := NewApplyWebVerificationBizTokenIntlRequest()
	req.RedirectURL = p.RedirectURL
	req.CompareImageBase64 = p.CompareImageBase64
	req.Extra = p.Extra
	req.Config = p.Config
	req.RuleId = p.RuleId
	req.SetContext(ctx)
	resp := NewApplyWebVerificationBizTokenIntlResponse()

	if err := c.regionClient(region).Send(req, resp); err != nil {
		return nil, c.apiError(ctx, err, p)
	}
	r := resp.Response
	switch {
	case r == nil:
		return nil, &APIError{Code: CodeBadResponse, Message: "answer has no Response object"}
	case r.BizToken == nil || *r.BizToken == "" || r.VerificationURL == nil || *r.VerificationURL == "":
		return nil, &APIError{Code: CodeBadResponse, Message: "answer lacks BizToken or VerificationURL", RequestID: deref(r.RequestId)}
	}
	return r, nil
}

// apiError converts an error of common.Client.Send into an *APIError with a safe
// message, keeping a context error of the call reachable through Unwrap.
func (c *Client) apiError(ctx context.Context, err error, p *ApplyWebVerificationBizTokenIntlRequestParams) error {
	ae := &APIError{Code: CodeClientUnknown, cause: err}
	var se *tcerr.TencentCloudSDKError
	if errors.As(err, &se) {
		ae.Code, ae.Message, ae.RequestID, ae.cause = se.Code, se.Message, se.RequestId, se.Unwrap()
	}
	// A client-side failure while the context is done (e.g. a body read cut by
	// the deadline, which the SDK reports as ParseJsonError without a cause) is
	// that context's doing: keep it detectable.
	if ctxErr := ctx.Err(); ctxErr != nil && strings.HasPrefix(ae.Code, "ClientError") && !errors.Is(ae.cause, ctxErr) {
		if ae.cause == nil {
			ae.cause = ctxErr
		} else {
			ae.cause = errors.Join(ae.cause, ctxErr)
		}
	}
	var secrets []string
	secrets = append(secrets, c.redact...)
	if p.CompareImageBase64 != nil {
		secrets = append(secrets, *p.CompareImageBase64)
	}
	ae.Message = sanitize(ae.Message, secrets)
	if ae.cause != nil {
		ae.cause = &sanitizedError{err: ae.cause, msg: sanitize(ae.cause.Error(), secrets)}
	}
	return ae
}

// sanitizedError keeps an error's chain for errors.Is/As but shows a sanitised text.
type sanitizedError struct {
	err error
	msg string
}

func (e *sanitizedError) Error() string { return e.msg }
func (e *sanitizedError) Unwrap() error { return e.err }

// sanitize makes an upstream or SDK message safe for errors and logs: secrets
// (credentials, the image) redacted, runs of 100 or more base64 characters (image
// bytes echoed back) redacted, control characters replaced, cut to maxMessageLen.
func sanitize(msg string, secrets []string) string {
	for _, s := range secrets {
		if len(s) >= 4 && strings.Contains(msg, s) {
			msg = strings.ReplaceAll(msg, s, "[redacted]")
		}
	}
	var b strings.Builder
	run := 0
	flush := func(end int) {
		if run >= 100 {
			fmt.Fprintf(&b, "[redacted %d bytes]", run)
		} else {
			b.WriteString(msg[end-run : end])
		}
		run = 0
	}
	for i, r := range msg {
		if r < utf8.RuneSelf && isBase64Char(byte(r)) {
			run++
			continue
		}
		flush(i)
		switch {
		case r == utf8.RuneError, r < ' ', r == 0x7f:
			b.WriteByte(' ')
		default:
			b.WriteRune(r)
		}
		if b.Len() > maxMessageLen {
			break
		}
	}
	if run > 0 {
		flush(len(msg))
	}
	out := b.String()
	if len(out) > maxMessageLen {
		cut := maxMessageLen
		for cut > 0 && !utf8.RuneStart(out[cut]) {
			cut--
		}
		out = out[:cut] + "…"
	}
	return out
}

func isBase64Char(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '+' || c == '/' || c == '='
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}
