// Package tc3 implements Tencent Cloud's TC3-HMAC-SHA256 request signature (API 3.0,
// "Signature v3") from the published algorithm, independently of the official SDKs, so
// that the simulator can check what any SDK sends. Sign signs a request; Verify checks
// one and answers with the Tencent Cloud error code to return (*Error).
//
// Invariants: Verify never reveals a secret or the expected signature, and accepts
// the signed host with or without its port (SDKs differ; see Verify).
package tc3

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Algorithm is the signature method named at the start of the Authorization header.
const Algorithm = "TC3-HMAC-SHA256"

// MaxClockSkew is how far X-TC-Timestamp may be from the verifier's clock, either way:
// a difference of exactly five minutes is accepted, one second more is refused.
const MaxClockSkew = 300 * time.Second

// UnsignedPayload is the X-TC-Content-SHA256 value that leaves the body out of the signature.
const UnsignedPayload = "UNSIGNED-PAYLOAD"

// Header names read and written by this package.
const (
	HeaderAuthorization = "Authorization"
	HeaderTimestamp     = "X-TC-Timestamp"
	HeaderContentSHA256 = "X-TC-Content-SHA256"
)

// Tencent Cloud error codes carried by *Error.
const (
	CodeSignatureFailure     = "AuthFailure.SignatureFailure"
	CodeSignatureExpire      = "AuthFailure.SignatureExpire"
	CodeSecretIDNotFound     = "AuthFailure.SecretIdNotFound"
	CodeInvalidAuthorization = "AuthFailure.InvalidAuthorization"
	CodeMissingParameter     = "MissingParameter"
	CodeInvalidParameter     = "InvalidParameter"
)

// Error is a verification failure: Code is the Tencent Cloud error code to answer with,
// Message the human text (it never contains a secret or the expected signature).
type Error struct {
	Code    string
	Message string
}

// Error implements error.
func (e *Error) Error() string { return "tc3: " + e.Code + ": " + e.Message }

// Code returns the Tencent Cloud error code of err when it is (or wraps) an *Error, and
// "" otherwise.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Credential is a SecretId and its SecretKey.
type Credential struct {
	SecretID  string
	SecretKey string
}

// The algorithm, for a request with timestamp T (UNIX seconds) and Date the UTC date of T:
//
//	CanonicalRequest = Method \n "/" \n Query \n CanonicalHeaders \n SignedHeaders \n hex(SHA256(body))
//	StringToSign     = "TC3-HMAC-SHA256" \n T \n Date/service/tc3_request \n hex(SHA256(CanonicalRequest))
//	SecretSigning    = HMAC(HMAC(HMAC("TC3"+SecretKey, Date), service), "tc3_request")
//	Signature        = hex(HMAC(SecretSigning, StringToSign))
//
// CanonicalHeaders holds one "name:value\n" line per signed header, name and value
// lowercased and trimmed, in the ASCII order of SignedHeaders. Query is empty for POST.
// With "X-TC-Content-SHA256: UNSIGNED-PAYLOAD" the payload hash is that of the literal
// UNSIGNED-PAYLOAD, as the SDK's UnsignedPayload option does.

// Sign signs r for service (e.g. "faceid") with cred at time now: it sets X-TC-Timestamp
// to now's UNIX seconds and Authorization to the TC3-HMAC-SHA256 header. body must be
// the exact bytes r sends. The signed headers are content-type and host (host is r.Host,
// or r.URL.Host when empty) plus extraSignedHeaders (case-insensitive names of headers
// r carries, e.g. "X-TC-Action").
func Sign(r *http.Request, body []byte, service string, cred Credential, now time.Time, extraSignedHeaders ...string) error {
	if cred.SecretID == "" || cred.SecretKey == "" {
		return errors.New("tc3: sign: empty SecretId or SecretKey")
	}
	if service == "" {
		return errors.New("tc3: sign: empty service")
	}
	names := []string{"content-type", "host"}
	for _, h := range extraSignedHeaders {
		names = append(names, strings.ToLower(strings.TrimSpace(h)))
	}
	slices.Sort(names)
	names = slices.Compact(names)
	ts := now.Unix()
	r.Header.Set(HeaderTimestamp, strconv.FormatInt(ts, 10))
	date := time.Unix(ts, 0).UTC().Format(time.DateOnly)
	canon, err := canonicalRequest(nil, r, hostOf(r), names, strings.Join(names, ";"), body)
	if err != nil {
		return fmt.Errorf("tc3: sign: %w", err)
	}
	scope := date + "/" + service + "/tc3_request"
	sig := signature(signingKey(cred.SecretKey, date, service), stringToSign(ts, scope, canon))
	r.Header.Set(HeaderAuthorization, Algorithm+" Credential="+cred.SecretID+"/"+scope+
		", SignedHeaders="+strings.Join(names, ";")+", Signature="+sig)
	return nil
}

// Verify checks the TC3-HMAC-SHA256 signature of r, whose body is body, for service.
// For a request to a host with a port, the signed host header may be the host with
// the port (the Go SDK signs "host:127.0.0.1:19000") or without it (the Node.js SDK
// signs the URL's hostname, "host:127.0.0.1"); any other host is refused. On Tencent's
// own endpoints (port 443, no port in Host) the two agree.
// lookupSecret returns the SecretKey of a SecretId (ok false when there is none). now is
// the verifier's clock. A nil result means the signature is valid; otherwise the error
// is an *Error whose Code is, in the order the checks run:
//
//   - MissingParameter: no Authorization or no X-TC-Timestamp header;
//   - InvalidParameter: X-TC-Timestamp is not a decimal integer;
//   - AuthFailure.InvalidAuthorization: the header is malformed, names another algorithm
//     or service, SignedHeaders is unsorted or lacks content-type or host, or names a
//     header the request does not carry;
//   - AuthFailure.SecretIdNotFound: lookupSecret does not know the SecretId;
//   - AuthFailure.SignatureExpire: X-TC-Timestamp is more than MaxClockSkew from now;
//   - AuthFailure.SignatureFailure: the credential scope's date is not the UTC date of
//     X-TC-Timestamp, or the signature does not match.
func Verify(r *http.Request, body []byte, service string, lookupSecret func(secretID string) (secretKey string, ok bool), now time.Time) error {
	auth := r.Header.Get(HeaderAuthorization)
	if auth == "" {
		return missing(HeaderAuthorization)
	}
	tsText := r.Header.Get(HeaderTimestamp)
	if tsText == "" {
		return missing(HeaderTimestamp)
	}
	ts, err := strconv.ParseInt(tsText, 10, 64)
	if err != nil {
		return &Error{CodeInvalidParameter, "The value of X-TC-Timestamp must be an integer of UNIX seconds."}
	}
	a, err := parseAuthorization(auth)
	if err != nil {
		return &Error{CodeInvalidAuthorization, "The Authorization header is invalid: " + err.Error() + "."}
	}
	if a.service != service {
		return &Error{CodeInvalidAuthorization, "The Authorization header is invalid: the credential scope names service `" + a.service + "`, not `" + service + "`."}
	}
	for _, n := range a.signed {
		if n != "host" && r.Header.Get(n) == "" {
			return &Error{CodeInvalidAuthorization, "The Authorization header is invalid: signed header `" + n + "` is not in the request."}
		}
	}
	key, ok := lookupSecret(a.secretID)
	if !ok {
		return &Error{CodeSecretIDNotFound, "The SecretId is not found, please ensure that your SecretId is correct."}
	}
	if d := now.Sub(time.Unix(ts, 0)); d > MaxClockSkew || d < -MaxClockSkew {
		return &Error{CodeSignatureExpire, "Signature expired. Timestamp and server time cannot differ by more than five minutes (X-TC-Timestamp " +
			tsText + ", server time " + strconv.FormatInt(now.Unix(), 10) + ")."}
	}
	if date := time.Unix(ts, 0).UTC().Format(time.DateOnly); a.date != date {
		return &Error{CodeSignatureFailure, "The provided credentials could not be validated: the credential scope date " + a.date +
			" is not the UTC date of X-TC-Timestamp (" + date + ")."}
	}
	got := make([]byte, sha256.Size)
	if _, err := hex.Decode(got, []byte(a.signature)); err != nil {
		return &Error{CodeSignatureFailure, "The provided credentials could not be validated. Please check your signature is correct."}
	}
	sk := signingKey(key, a.date, service)
	host := hostOf(r)
	hosts := []string{host}
	if h := withoutPort(host); h != host {
		hosts = append(hosts, h)
	}
	buf := getBuf()
	defer putBuf(buf)
	for _, h := range hosts {
		canon, err := canonicalRequest((*buf)[:0], r, h, a.signed, a.signedText, body)
		if err != nil { // cannot happen: presence was checked above
			return &Error{CodeInvalidAuthorization, "The Authorization header is invalid: " + err.Error() + "."}
		}
		*buf = canon
		if hmac.Equal(got, signatureBytes(sk, stringToSign(ts, a.scope, canon))) {
			return nil
		}
	}
	return &Error{CodeSignatureFailure, "The provided credentials could not be validated. Please check your signature is correct."}
}

// hostOf is the host r was sent to: r.Host, or r.URL.Host when empty.
func hostOf(r *http.Request) string {
	if r.Host == "" && r.URL != nil {
		return r.URL.Host
	}
	return r.Host
}

// withoutPort returns host without a trailing ":port" ("[::1]:80" → "[::1]", as a
// URL's hostname is written), or host unchanged when it has none.
func withoutPort(host string) string {
	i := strings.LastIndexByte(host, ':')
	if i < 0 || i < strings.LastIndexByte(host, ']') || i == len(host)-1 {
		return host
	}
	for _, c := range host[i+1:] {
		if c < '0' || c > '9' {
			return host
		}
	}
	if strings.Count(host, ":") > 1 && !strings.HasPrefix(host, "[") { // a bare IPv6 address
		return host
	}
	return host[:i]
}

func missing(name string) *Error {
	return &Error{CodeMissingParameter, "The request is missing a required parameter `" + name + "`."}
}

// authorization is a parsed Authorization header.
type authorization struct {
	secretID   string
	date       string
	service    string
	scope      string   // date/service/tc3_request
	signed     []string // lowercase, ASCII-sorted
	signedText string   // as sent
	signature  string   // 64 lowercase hex digits
}

// parseAuthorization parses
// "TC3-HMAC-SHA256 Credential=ID/DATE/SERVICE/tc3_request, SignedHeaders=a;b, Signature=HEX".
// Spaces around the commas are optional.
func parseAuthorization(h string) (authorization, error) {
	var a authorization
	alg, rest, ok := strings.Cut(strings.TrimSpace(h), " ")
	if !ok {
		return a, errors.New("no credential after the algorithm")
	}
	if alg != Algorithm {
		return a, errors.New("the algorithm must be " + Algorithm)
	}
	var cred, signed, sig string
	var seen [3]int
	for part := range strings.SplitSeq(rest, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return a, errors.New("a field is not name=value")
		}
		switch k {
		case "Credential":
			cred = v
			seen[0]++
		case "SignedHeaders":
			signed = v
			seen[1]++
		case "Signature":
			sig = v
			seen[2]++
		default:
			return a, errors.New("unknown field " + strconv.Quote(k))
		}
	}
	if seen != [3]int{1, 1, 1} {
		return a, errors.New("Credential, SignedHeaders and Signature must each appear once")
	}
	// Credential: SecretId/Date/Service/tc3_request. The SecretId has no slash.
	p := strings.Split(cred, "/")
	if len(p) != 4 || p[0] == "" || p[2] == "" || p[3] != "tc3_request" {
		return a, errors.New("Credential must be SecretId/Date/Service/tc3_request")
	}
	if _, err := time.Parse(time.DateOnly, p[1]); err != nil {
		return a, errors.New("the credential date must be YYYY-MM-DD")
	}
	a.secretID, a.date, a.service = p[0], p[1], p[2]
	a.scope = cred[len(p[0])+1:]
	a.signedText = signed
	a.signed = strings.Split(signed, ";")
	var hasCT, hasHost bool
	for i, n := range a.signed {
		if n == "" || n != strings.ToLower(n) || strings.TrimSpace(n) != n {
			return a, errors.New("SignedHeaders must be lowercase names separated by ';'")
		}
		if i > 0 && a.signed[i-1] >= n {
			return a, errors.New("SignedHeaders must be in ascending ASCII order without repeats")
		}
		hasCT = hasCT || n == "content-type"
		hasHost = hasHost || n == "host"
	}
	if !hasCT || !hasHost {
		return a, errors.New("SignedHeaders must include content-type and host")
	}
	if len(sig) != 2*sha256.Size || strings.ToLower(sig) != sig {
		return a, errors.New("Signature must be 64 lowercase hex digits")
	}
	if _, err := hex.DecodeString(sig); err != nil {
		return a, errors.New("Signature must be 64 lowercase hex digits")
	}
	a.signature = sig
	return a, nil
}

// canonicalRequest appends the canonical request of r to dst, with host as the value
// of the host header. names are the lowercase signed header names in ASCII order,
// signedText their ';'-joined form.
func canonicalRequest(dst []byte, r *http.Request, host string, names []string, signedText string, body []byte) ([]byte, error) {
	dst = append(dst, r.Method...)
	dst = append(dst, "\n/\n"...)
	if r.Method == http.MethodGet && r.URL != nil {
		dst = append(dst, r.URL.RawQuery...)
	}
	dst = append(dst, '\n')
	for _, n := range names {
		var v string
		if n == "host" {
			v = host
		} else {
			v = r.Header.Get(n)
		}
		if v == "" {
			return nil, errors.New("signed header `" + n + "` is not in the request")
		}
		dst = append(dst, n...)
		dst = append(dst, ':')
		dst = appendLower(dst, strings.TrimSpace(v))
		dst = append(dst, '\n')
	}
	dst = append(dst, '\n')
	dst = append(dst, signedText...)
	dst = append(dst, '\n')
	var sum [sha256.Size]byte
	if r.Header.Get(HeaderContentSHA256) == UnsignedPayload {
		sum = sha256.Sum256([]byte(UnsignedPayload))
	} else {
		sum = sha256.Sum256(body)
	}
	return hex.AppendEncode(dst, sum[:]), nil
}

func appendLower(dst []byte, s string) []byte {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		}
		dst = append(dst, c)
	}
	return dst
}

// stringToSign builds the string to sign from the timestamp, the credential scope and
// the canonical request.
func stringToSign(ts int64, scope string, canonical []byte) []byte {
	sum := sha256.Sum256(canonical)
	b := make([]byte, 0, len(Algorithm)+1+20+1+len(scope)+1+2*sha256.Size)
	b = append(b, Algorithm...)
	b = append(b, '\n')
	b = strconv.AppendInt(b, ts, 10)
	b = append(b, '\n')
	b = append(b, scope...)
	b = append(b, '\n')
	return hex.AppendEncode(b, sum[:])
}

// secretDate, secretService and signingKey derive the signing key step by step.
func secretDate(secretKey, date string) []byte {
	return hmacSHA256([]byte("TC3"+secretKey), []byte(date))
}

func secretService(secretKey, date, service string) []byte {
	return hmacSHA256(secretDate(secretKey, date), []byte(service))
}

func signingKey(secretKey, date, service string) []byte {
	return hmacSHA256(secretService(secretKey, date, service), []byte("tc3_request"))
}

func signatureBytes(key, toSign []byte) []byte { return hmacSHA256(key, toSign) }

func signature(key, toSign []byte) string { return hex.EncodeToString(signatureBytes(key, toSign)) }

func hmacSHA256(key, msg []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write(msg)
	return m.Sum(nil)
}
