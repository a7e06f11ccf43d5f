package events

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// Headers of a webhook request, besides Content-Type.
const (
	// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256>": the
	// HMAC, keyed with the webhook's secret, of "<t>.<body>". With several
	// secrets (while rotating one) there is a v1= for each.
	SignatureHeader = "Ivsrt-Signature"
	// EventIDHeader carries the envelope's id: the same on every try, so a
	// receiver drops an event it has seen.
	EventIDHeader = "Ivsrt-Event-Id"
	// AttemptHeader carries the try's number, from 1.
	AttemptHeader = "Ivsrt-Delivery-Attempt"
)

// DefaultSignatureTolerance is how old a signature VerifySignature accepts
// by default: older requests are taken for replays.
const DefaultSignatureTolerance = 5 * time.Minute

// maxIdleConnsPerHost is how many connections a webhook keeps open to its
// receiver, at least a sink's concurrency.
const maxIdleConnsPerHost = 64

// Webhook delivers events by POSTing their envelope's JSON to a URL. A
// 2xx answer means delivered; anything else, or no answer, means try again
// later. Redirects are not followed.
type Webhook struct {
	URL     string
	Secrets [][]byte // signing keys; the first is current, the others are being retired
	Client  *http.Client
	Now     func() time.Time // nil: time.Now
}

// NewWebhook returns a webhook to rawURL signed with secrets (at least
// one, none empty).
func NewWebhook(rawURL string, secrets ...string) (*Webhook, error) {
	u, err := url.Parse(rawURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("webhook URL %q: want an absolute http or https URL", rawURL)
	}
	if len(secrets) == 0 {
		return nil, errors.New("webhook " + Redact(rawURL) + ": a secret to sign requests with is required")
	}
	w := &Webhook{URL: rawURL}
	for _, s := range secrets {
		if s == "" {
			return nil, errors.New("webhook " + Redact(rawURL) + ": empty secret")
		}
		w.Secrets = append(w.Secrets, []byte(s))
	}
	// Keep enough connections open for every stage in flight at once: the
	// default transport keeps two per host and would open a new one for
	// most deliveries.
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.MaxIdleConnsPerHost = maxIdleConnsPerHost
	w.Client = &http.Client{
		Transport:     t,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return w, nil
}

// Redact returns rawURL without its user information and query, which may
// hold credentials, for logs and status pages.
func Redact(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "(unparsable URL)"
	}
	u.User = nil
	if u.RawQuery != "" {
		u.RawQuery = "…"
	}
	return u.String()
}

// Send implements Sender.
func (w *Webhook) Send(ctx context.Context, a *Attempt) error {
	now := time.Now
	if w.Now != nil {
		now = w.Now
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(a.Body))
	if err != nil {
		return fmt.Errorf("webhook request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "ivsrt-webhook/1")
	req.Header.Set(EventIDHeader, a.Envelope.ID)
	req.Header.Set(AttemptHeader, strconv.Itoa(a.Number))
	req.Header.Set(SignatureHeader, Sign(w.Secrets, now(), a.Body))
	resp, err := w.Client.Do(req)
	if err != nil {
		return fmt.Errorf("POST %s: %w", Redact(w.URL), unwrapURLError(err))
	}
	defer resp.Body.Close()
	// Read a little of the answer: enough to tell why it failed, and to let
	// the connection be reused.
	snippet, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode/100 != 2 {
		msg := strings.TrimSpace(strings.ToValidUTF8(string(snippet), "?"))
		if msg != "" {
			msg = ": " + msg
		}
		return fmt.Errorf("POST %s: HTTP %d%s", Redact(w.URL), resp.StatusCode, msg)
	}
	return nil
}

// unwrapURLError drops *url.Error's repetition of method and URL (which
// may hold credentials).
func unwrapURLError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err
	}
	return err
}

// Sign returns the SignatureHeader value of body sent at t, with one v1
// signature per secret.
func Sign(secrets [][]byte, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	var b strings.Builder
	b.WriteString("t=")
	b.WriteString(ts)
	for _, s := range secrets {
		b.WriteString(",v1=")
		b.WriteString(hex.EncodeToString(signature(s, ts, body)))
	}
	return b.String()
}

func signature(secret []byte, ts string, body []byte) []byte {
	mac := hmac.New(sha256.New, secret)
	mac.Write([]byte(ts))
	mac.Write([]byte{'.'})
	mac.Write(body)
	return mac.Sum(nil)
}

// Errors of VerifySignature.
var (
	ErrNoSignature  = errors.New("webhook signature: missing or malformed " + SignatureHeader)
	ErrBadSignature = errors.New("webhook signature: no signature matches the secret")
	ErrStale        = errors.New("webhook signature: timestamp outside the tolerance")
)

// VerifySignature checks header (the SignatureHeader value) against body
// and secret, as a receiver should: one of the v1 signatures must be the
// HMAC of "<t>.<body>", and t within tolerance of now (so that a captured
// request cannot be replayed later; 0 means DefaultSignatureTolerance).
func VerifySignature(secret []byte, header string, body []byte, now time.Time, tolerance time.Duration) error {
	if tolerance <= 0 {
		tolerance = DefaultSignatureTolerance
	}
	var (
		ts   string
		sigs [][]byte
	)
	for part := range strings.SplitSeq(header, ",") {
		k, v, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return ErrNoSignature
		}
		switch k {
		case "t":
			ts = v
		case "v1":
			if sig, err := hex.DecodeString(v); err == nil {
				sigs = append(sigs, sig)
			}
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || len(sigs) == 0 {
		return ErrNoSignature
	}
	want := signature(secret, ts, body)
	matched := false
	for _, sig := range sigs {
		if hmac.Equal(sig, want) {
			matched = true
		}
	}
	if !matched {
		return ErrBadSignature
	}
	if age := now.Sub(time.Unix(sec, 0)); age > tolerance || age < -tolerance {
		return ErrStale
	}
	return nil
}
