package api

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"net/textproto"
	"net/url"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// Credential is one access key the server accepts.
type Credential struct{ AccessKeyID, SecretAccessKey string }

// SigV4Verifier checks AWS Signature Version 4 on incoming requests.
//
// Only the Authorization header form is supported; presigned URLs
// (X-Amz-Signature in the query string) are rejected.
type SigV4Verifier struct {
	Credentials []Credential // accepted keys
	Service     string       // signing name, "ivs"
	// Region, when set, is the only region a request may be signed for:
	// as AWS does, a request signed for another is refused rather than
	// answered with this region's ARNs.
	Region string
	// Dev accepts any well-formed signature without checking the secret or
	// the key id. The date is still checked against MaxSkew.
	Dev     bool
	MaxSkew time.Duration    // default 15 minutes when zero
	Now     func() time.Time // default time.Now
}

// AuthError is a failed check, with the AWS exception name, HTTP status and
// message to send.
type AuthError struct {
	Exception string
	Status    int
	Message   string
}

func (e *AuthError) Error() string { return e.Exception + ": " + e.Message }

const (
	sigAlgorithm      = "AWS4-HMAC-SHA256"
	sigTerminator     = "aws4_request"
	sigDateFormat     = "20060102T150405Z"
	sigScopeFormat    = "20060102"
	sigDefaultService = "ivs"
	sigDefaultSkew    = 15 * time.Minute
)

// sigSigner computes the signature we expect. It caches derived keys and is
// safe for concurrent use.
var sigSigner = v4.NewSigner()

func sigIncomplete(format string, args ...any) *AuthError {
	return &AuthError{Exception: "IncompleteSignatureException", Status: http.StatusForbidden, Message: fmt.Sprintf(format, args...)}
}

func sigInvalid(msg string) *AuthError {
	return &AuthError{Exception: "InvalidSignatureException", Status: http.StatusForbidden, Message: msg}
}

const sigMismatchMessage = "The request signature we calculated does not match the signature you provided. " +
	"Check your AWS Secret Access Key and signing method. Consult the service documentation for details."

// sigAuth is a parsed Authorization header.
type sigAuth struct {
	AccessKeyID   string
	Date          string // scope date, YYYYMMDD
	Region        string
	Service       string
	Terminator    string
	SignedHeaders []string // lower case, sorted, unique
	Signature     string   // 64 lower-case hex digits
}

// String formats a in the canonical form clients send.
func (a sigAuth) String() string {
	return sigAlgorithm + " Credential=" + a.AccessKeyID + "/" + a.Date + "/" + a.Region + "/" + a.Service + "/" + a.Terminator +
		", SignedHeaders=" + strings.Join(a.SignedHeaders, ";") + ", Signature=" + a.Signature
}

func (a sigAuth) signs(name string) bool {
	for _, h := range a.SignedHeaders {
		if h == name {
			return true
		}
	}
	return false
}

// sigParseAuthorization parses
//
//	AWS4-HMAC-SHA256 Credential=AKID/20261126/us-east-1/ivs/aws4_request, SignedHeaders=a;b, Signature=hex
//
// The three parts may come in any order, with optional spaces around the
// commas. The scope's service and date are checked by the caller.
func sigParseAuthorization(h string) (sigAuth, *AuthError) {
	var a sigAuth
	algo, rest, _ := strings.Cut(strings.TrimSpace(h), " ")
	if algo != sigAlgorithm {
		return a, sigIncomplete("Unsupported Authorization Type: '%s'. Only %s is accepted.", sigTruncate(algo), sigAlgorithm)
	}
	var credential, signedHeaders, signature string
	var haveCred, haveSigned, haveSig bool
	for _, part := range strings.Split(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			return a, sigIncomplete("Authorization header has an empty component. Authorization=%s", sigTruncate(h))
		}
		key, value, ok := strings.Cut(part, "=")
		if !ok {
			return a, sigIncomplete("'%s' not a valid key=value pair (missing equal-sign) in Authorization header: '%s'.", sigTruncate(part), sigTruncate(h))
		}
		var dst *string
		var seen *bool
		switch key {
		case "Credential":
			dst, seen = &credential, &haveCred
		case "SignedHeaders":
			dst, seen = &signedHeaders, &haveSigned
		case "Signature":
			dst, seen = &signature, &haveSig
		default:
			return a, sigIncomplete("Unknown component '%s' in Authorization header. Authorization=%s", sigTruncate(key), sigTruncate(h))
		}
		if *seen {
			return a, sigIncomplete("Authorization header has '%s' more than once. Authorization=%s", key, sigTruncate(h))
		}
		*dst, *seen = value, true
	}
	var missing []string
	if !haveCred {
		missing = append(missing, "Authorization header requires 'Credential' parameter.")
	}
	if !haveSig {
		missing = append(missing, "Authorization header requires 'Signature' parameter.")
	}
	if !haveSigned {
		missing = append(missing, "Authorization header requires 'SignedHeaders' parameter.")
	}
	if len(missing) > 0 {
		return a, sigIncomplete("%s Authorization=%s", strings.Join(missing, " "), sigTruncate(h))
	}

	scope := strings.Split(credential, "/")
	if len(scope) != 5 {
		return a, sigIncomplete("Credential must have exactly 5 slash-delimited elements, e.g. keyid/date/region/service/term, got '%s'.", sigTruncate(credential))
	}
	a.AccessKeyID, a.Date, a.Region, a.Service, a.Terminator = scope[0], scope[1], scope[2], scope[3], scope[4]
	if a.AccessKeyID == "" || !sigIsToken(a.AccessKeyID, sigKeyIDChar) {
		return a, sigIncomplete("Credential has an invalid access key id: '%s'.", sigTruncate(a.AccessKeyID))
	}
	if len(a.Date) != len(sigScopeFormat) {
		return a, sigIncomplete("Credential should be scoped to a valid date (YYYYMMDD), not '%s'.", sigTruncate(a.Date))
	}
	if _, err := time.Parse(sigScopeFormat, a.Date); err != nil {
		return a, sigIncomplete("Credential should be scoped to a valid date (YYYYMMDD), not '%s'.", sigTruncate(a.Date))
	}
	if a.Region == "" || !sigIsToken(a.Region, sigRegionChar) {
		return a, sigIncomplete("Credential should be scoped to a valid region, not '%s'.", sigTruncate(a.Region))
	}
	if a.Terminator != sigTerminator {
		return a, sigIncomplete("Credential should be scoped with a valid terminator: '%s', not '%s'.", sigTerminator, sigTruncate(a.Terminator))
	}

	if signedHeaders == "" {
		return a, sigIncomplete("SignedHeaders must not be empty. Authorization=%s", sigTruncate(h))
	}
	a.SignedHeaders = strings.Split(signedHeaders, ";")
	for i, name := range a.SignedHeaders {
		if name == "" || !sigIsToken(name, sigHeaderChar) {
			return a, sigIncomplete("SignedHeaders must be lower-case header names separated by ';', got '%s'.", sigTruncate(signedHeaders))
		}
		if i > 0 && a.SignedHeaders[i-1] >= name {
			return a, sigIncomplete("SignedHeaders must be sorted and unique, got '%s'.", sigTruncate(signedHeaders))
		}
	}

	if len(signature) != sha256.Size*2 || !sigIsToken(signature, sigHexChar) {
		return a, sigIncomplete("Signature must be %d lower-case hexadecimal digits, got '%s'.", sha256.Size*2, sigTruncate(signature))
	}
	a.Signature = signature
	return a, nil
}

func sigIsToken(s string, ok func(c byte) bool) bool {
	for i := 0; i < len(s); i++ {
		if !ok(s[i]) {
			return false
		}
	}
	return true
}

func sigKeyIDChar(c byte) bool {
	return c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.'
}

func sigRegionChar(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' }

func sigHexChar(c byte) bool { return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' }

// sigHeaderChar accepts the RFC 9110 token characters, upper case excluded.
func sigHeaderChar(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

// sigTruncate keeps client-supplied text short and printable in messages.
func sigTruncate(s string) string {
	const max = 200
	if len(s) > max {
		s = s[:max] + "..."
	}
	return strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return '?'
		}
		return r
	}, s)
}

// Verify checks r, whose body has already been read into body (so it can be
// hashed). It returns the access key id on success; any failure is an
// *AuthError.
func (v *SigV4Verifier) Verify(r *http.Request, body []byte) (accessKeyID string, err error) {
	q := r.URL.Query()
	if q.Has("X-Amz-Signature") || q.Has("X-Amz-Credential") || q.Has("X-Amz-Algorithm") {
		return "", sigIncomplete("Query-string (presigned URL) authentication is not supported; sign the request with an Authorization header.")
	}
	values := r.Header.Values("Authorization")
	if len(values) == 0 || strings.TrimSpace(values[0]) == "" {
		return "", &AuthError{Exception: "MissingAuthenticationTokenException", Status: http.StatusForbidden, Message: "Missing Authentication Token"}
	}
	if len(values) > 1 {
		return "", sigIncomplete("Only one Authorization header is allowed.")
	}
	auth, aerr := sigParseAuthorization(values[0])
	if aerr != nil {
		return "", aerr
	}
	service := v.Service
	if service == "" {
		service = sigDefaultService
	}
	if auth.Service != service {
		return "", sigIncomplete("Credential should be scoped to correct service: '%s'.", service)
	}
	if v.Region != "" && auth.Region != v.Region {
		return "", &AuthError{Exception: "InvalidSignatureException", Status: http.StatusForbidden,
			Message: fmt.Sprintf("Credential should be scoped to a valid region, not '%s'. This server answers as %s (its --region).", sigTruncate(auth.Region), v.Region)}
	}
	if !auth.signs("host") {
		return "", sigIncomplete("'Host' must be a 'SignedHeader' in the AWS Authorization.")
	}

	dates := r.Header.Values("X-Amz-Date")
	if len(dates) == 0 {
		return "", sigIncomplete("Authorization header requires existence of a 'X-Amz-Date' header. Authorization=%s", sigTruncate(values[0]))
	}
	if len(dates) > 1 {
		return "", sigIncomplete("Only one X-Amz-Date header is allowed.")
	}
	amzDate := dates[0]
	signingTime, perr := time.Parse(sigDateFormat, amzDate)
	if perr != nil || signingTime.Format(sigDateFormat) != amzDate {
		return "", sigIncomplete("X-Amz-Date must be in the ISO-8601 basic format YYYYMMDD'T'HHMMSS'Z', got '%s'.", sigTruncate(amzDate))
	}
	if !auth.signs("x-amz-date") {
		return "", sigIncomplete("'X-Amz-Date' must be a 'SignedHeader' in the AWS Authorization.")
	}
	if auth.Date != amzDate[:len(sigScopeFormat)] {
		return "", sigIncomplete("Date in Credential scope does not match YYYYMMDD from ISO-8601 version of date from HTTP: '%s' != '%s', from '%s'.",
			auth.Date, amzDate[:len(sigScopeFormat)], amzDate)
	}

	var secret string
	if !v.Dev {
		found := false
		for _, c := range v.Credentials {
			if c.AccessKeyID == auth.AccessKeyID {
				secret, found = c.SecretAccessKey, true
				break
			}
		}
		if !found {
			return "", &AuthError{Exception: "UnrecognizedClientException", Status: http.StatusForbidden, Message: "The security token included in the request is invalid."}
		}
	}

	if aerr := v.sigCheckSkew(signingTime); aerr != nil {
		return "", aerr
	}
	if v.Dev {
		return auth.AccessKeyID, nil
	}

	got, aerr := sigExpected(r, body, auth, secret, signingTime)
	if aerr != nil {
		return "", aerr
	}
	if strings.Join(got.SignedHeaders, ";") != strings.Join(auth.SignedHeaders, ";") {
		return "", sigInvalid(fmt.Sprintf("The request's SignedHeaders '%s' cannot be verified: the headers this server signs for it are '%s'. "+
			"Sign only headers that are sent with the request; user-agent, expect, transfer-encoding, x-amzn-trace-id and a zero content-length are never signed.",
			sigTruncate(strings.Join(auth.SignedHeaders, ";")), sigTruncate(strings.Join(got.SignedHeaders, ";"))))
	}
	if !hmac.Equal([]byte(got.Signature), []byte(auth.Signature)) {
		return "", sigInvalid(sigMismatchMessage)
	}
	return auth.AccessKeyID, nil
}

// sigCheckSkew rejects a signing time too far from now, worded as AWS does.
func (v *SigV4Verifier) sigCheckSkew(signed time.Time) *AuthError {
	now := time.Now
	if v.Now != nil {
		now = v.Now
	}
	skew := v.MaxSkew
	if skew <= 0 {
		skew = sigDefaultSkew
	}
	t := now().UTC().Truncate(time.Second)
	span := skew.String()
	if skew%time.Minute == 0 {
		span = fmt.Sprintf("%d min.", int64(skew/time.Minute))
	}
	if earliest := t.Add(-skew); signed.Before(earliest) {
		return sigInvalid(fmt.Sprintf("Signature expired: %s is now earlier than %s (%s - %s)",
			signed.Format(sigDateFormat), earliest.Format(sigDateFormat), t.Format(sigDateFormat), span))
	}
	if latest := t.Add(skew); signed.After(latest) {
		return sigInvalid(fmt.Sprintf("Signature not yet current: %s is still later than %s (%s + %s)",
			signed.Format(sigDateFormat), latest.Format(sigDateFormat), t.Format(sigDateFormat), span))
	}
	return nil
}

// sigExpected signs a copy of r holding only the headers the client signed,
// and returns the Authorization header the SDK signer produced for it.
func sigExpected(r *http.Request, body []byte, auth sigAuth, secret string, signingTime time.Time) (sigAuth, *AuthError) {
	// Keep the escaped path as received; the signer escapes it once more
	// (the non-S3 rule). No scheme, so the signer leaves the Host as is.
	u := &url.URL{Path: r.URL.Path, RawPath: r.URL.RawPath, RawQuery: r.URL.RawQuery}
	c := &http.Request{Method: r.Method, URL: u, Host: r.Host, Header: make(http.Header)}
	creds := aws.Credentials{AccessKeyID: auth.AccessKeyID, SecretAccessKey: secret}
	for _, name := range auth.SignedHeaders {
		switch name {
		case "host":
			continue
		case "content-length":
			// The SDK signer signs content-length from ContentLength, and
			// only when it is positive.
			c.ContentLength = r.ContentLength
			continue
		case "x-amz-security-token":
			creds.SessionToken = r.Header.Get("X-Amz-Security-Token")
		}
		if vals := r.Header.Values(name); len(vals) > 0 {
			c.Header[textproto.CanonicalMIMEHeaderKey(name)] = append([]string(nil), vals...)
		}
	}
	sum := sha256.Sum256(body)
	err := sigSigner.SignHTTP(context.Background(), creds, c, hex.EncodeToString(sum[:]), auth.Service, auth.Region, signingTime)
	if err != nil {
		return sigAuth{}, sigInvalid("The request signature could not be computed: " + err.Error())
	}
	got, aerr := sigParseAuthorization(c.Header.Get("Authorization"))
	if aerr != nil {
		return sigAuth{}, sigInvalid("The request signature could not be computed: " + aerr.Message)
	}
	return got, nil
}

// Authorize verifies r, whose body has been read into body, and answers a
// failed check as the API does (AWS error shape), reporting whether r may
// go on. It lets handlers beside the API, such as the event stream, take
// the same signatures.
func (v *SigV4Verifier) Authorize(w http.ResponseWriter, r *http.Request, body []byte) bool {
	_, err := v.Verify(r, body)
	if err == nil {
		return true
	}
	var ae *AuthError
	if !errors.As(err, &ae) { // Verify fails only with *AuthError
		ae = &AuthError{Exception: "InternalServerException", Status: http.StatusInternalServerError, Message: "Internal server error."}
	}
	writeException(w, ae.Exception, ae.Status, ae.Message)
	return false
}
