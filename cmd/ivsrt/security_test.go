package main

import (
	"bytes"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/events"
	"github.com/ivsrt/ivsrt/events/eventstest"
)

// The tests of docs/security.md that no other test makes.

// syncBuffer is a log destination tests can read while the server writes.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// TestSecretsStayOutOfLogs: the API secret, a webhook's signing secret and
// credentials in its URL appear neither in the logs (at debug level, while
// deliveries fail and requests are refused) nor in the delivery API.
func TestSecretsStayOutOfLogs(t *testing.T) {
	const (
		hookPassword = "hook-password-1234"
		hookQuery    = "query-token-5678"
		hookSecret   = "whsec-never-logged-9012"
	)
	rcv := eventstest.NewReceiver(t, hookSecret)
	rcv.Up()
	rcv.SetAnswer(func(*ivsrt.Envelope) int { return http.StatusInternalServerError })
	hookURL := strings.Replace(rcv.URL(), "http://", "http://user:"+hookPassword+"@", 1) + "?token=" + hookQuery

	logs := &syncBuffer{}
	m := NewMain()
	m.Config.Listen, m.Config.DataDir = "127.0.0.1:0", t.TempDir()
	m.Config.AccessKeyID, m.Config.SecretAccessKey = testAccessKeyID, testSecretAccessKey
	m.Config.WebhookURLs, m.Config.WebhookSecret = []string{hookURL}, hookSecret
	m.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	if err := m.Run(testContext(t)); err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	c, _ := newClient(t, m, testAccessKeyID, testSecretAccessKey)
	createStage(t, c, "logged")
	// A refused request (wrong secret) and failing deliveries.
	bad, _ := newClient(t, m, testAccessKeyID, "wrong-secret-wrong-secret-wrong-secret00")
	if _, err := bad.ListStages(testContext(t), nil); err == nil {
		t.Error("a wrong secret was accepted")
	}
	eventually(t, 10*time.Second, "failed deliveries", func() error {
		if _, tries, _ := rcv.Snapshot(); tries < 2 {
			return errors.New("not yet")
		}
		return nil
	})
	var sinks struct {
		Sinks []events.SinkStatus `json:"sinks"`
	}
	signedRequest(t, m, http.MethodGet, events.SinksPath, "").decode(t, &sinks)
	status := ""
	for _, s := range sinks.Sinks {
		status += s.Target + " " + s.LastError
	}
	if !strings.Contains(status, "HTTP 500") {
		t.Errorf("sinks status shows no failure: %q", status)
	}
	out := logs.String()
	if !strings.Contains(out, "delivery failed") {
		t.Errorf("the debug log shows no failed delivery:\n%s", out)
	}
	for _, secret := range []string{hookPassword, hookQuery, hookSecret, testSecretAccessKey} {
		if strings.Contains(out, secret) {
			t.Errorf("the log contains the secret %q", secret)
		}
		if strings.Contains(status, secret) {
			t.Errorf("the delivery API shows the secret %q", secret)
		}
	}
}

// TestDataFolderPermissions: the data folder is the server's alone, and
// so are the secrets in it.
func TestDataFolderPermissions(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "data")
	startServer(t, withDataDir(dir), withoutKeys())
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("data folder: %v, %v; want mode 0700", fi.Mode().Perm(), err)
	}
	for _, name := range []string{"credentials.json", "token-signing-key.pem", "pagination.key"} {
		fi, err := os.Stat(filepath.Join(dir, name))
		if err != nil {
			t.Errorf("%s: %v", name, err)
			continue
		}
		if fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want 0600", name, fi.Mode().Perm())
		}
	}
}

// TestRequestLimits: headers beyond 64 KiB are refused before anything
// reads them, and the server bounds how long a client may take to send
// its headers and body (against slow clients holding connections).
func TestRequestLimits(t *testing.T) {
	m, _ := startServer(t)
	r := newRequest(t, m, http.MethodPost, "/ListStages", "{}")
	r.Header.Set("X-Padding", strings.Repeat("a", 100<<10))
	resp, err := http.DefaultClient.Do(r)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("100 KiB of headers: status %d, want 431", resp.StatusCode)
	}
	if m.http.ReadHeaderTimeout <= 0 || m.http.ReadHeaderTimeout > 10*time.Second ||
		m.http.ReadTimeout <= 0 || m.http.ReadTimeout > 30*time.Second || m.http.MaxHeaderBytes > 64<<10 {
		t.Errorf("limits: header timeout %v, read timeout %v, max header bytes %d",
			m.http.ReadHeaderTimeout, m.http.ReadTimeout, m.http.MaxHeaderBytes)
	}
}

// TestStorePasswordNotShown: a PostgreSQL URL's password appears neither
// in the error of a failed start nor in the log.
func TestStorePasswordNotShown(t *testing.T) {
	const password = "pg-password-never-shown"
	logs := &syncBuffer{}
	m := NewMain()
	m.Config.Listen, m.Config.DataDir = "127.0.0.1:0", t.TempDir()
	m.Config.Store = "postgres://ivsrt:" + password + "@127.0.0.1:1/ivsrt?connect_timeout=2"
	m.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
	err := m.Run(testContext(t))
	m.Close()
	if err == nil {
		t.Fatal("started without a database")
	}
	if strings.Contains(err.Error(), password) || strings.Contains(logs.String(), password) {
		t.Errorf("the password shows: %v\n%s", err, logs.String())
	}
	if !strings.Contains(err.Error(), "postgres://ivsrt:") {
		t.Errorf("the error does not say which database: %v", err)
	}
}
