package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/events"
)

func sinksFrom(t *testing.T, file string, args ...string) (*sinkSet, error) {
	t.Helper()
	m := NewMain()
	if file != "" {
		path := filepath.Join(t.TempDir(), "sinks.json")
		if err := os.WriteFile(path, []byte(file), 0o600); err != nil {
			t.Fatal(err)
		}
		args = append(args, "--event-sinks", path)
	}
	if err := m.ParseFlags(args); err != nil {
		return nil, err
	}
	set, err := m.buildSinks()
	if err == nil {
		t.Cleanup(set.close)
	}
	return set, err
}

func TestSinksFile(t *testing.T) {
	t.Setenv("HOOK_SECRET", "from-env")
	set, err := sinksFrom(t, `{
		"webhooks": [
			{"name": "billing", "url": "https://user:pw@billing.example.com/hook?token=x", "secretEnv": "HOOK_SECRET",
			 "filter": {"detail": {"event_name": ["Participant Published"]}},
			 "retryFor": "48h", "minBackoff": "2s", "maxBackoff": "30m", "timeout": "5s", "concurrency": 4},
			{"name": "mod", "url": "http://127.0.0.1:9/hook", "secrets": ["new", "old"]}
		],
		"nats": [{"name": "bus", "url": "nats://u:p@127.0.0.1:9", "subjectPrefix": "x.y", "jetstream": true}]
	}`, "--webhook-url", "http://127.0.0.1:9/a", "--webhook-url", "http://127.0.0.1:9/b", "--webhook-secret", "s",
		"--webhook-filter", `{"detail-type": ["IVS Stage Update"]}`, "--event-retry-for", "1h")
	if err != nil {
		t.Fatal(err)
	}
	byName := map[string]events.SinkConfig{}
	for _, c := range set.configs {
		byName[c.Name] = c
	}
	if len(byName) != 5 {
		t.Fatalf("sinks: %v", byName)
	}
	b := byName["billing"]
	if b.Kind != "webhook" || b.Target != "https://billing.example.com/hook?…" || b.RetryFor != 48*time.Hour ||
		b.MinBackoff != 2*time.Second || b.MaxBackoff != 30*time.Minute || b.Timeout != 5*time.Second || b.Concurrency != 4 {
		t.Errorf("billing: %+v", b)
	}
	if w := b.Sender.(*events.Webhook); len(w.Secrets) != 1 || string(w.Secrets[0]) != "from-env" {
		t.Errorf("billing secrets: %q", w.Secrets)
	}
	if w := byName["mod"].Sender.(*events.Webhook); len(w.Secrets) != 2 || string(w.Secrets[0]) != "new" {
		t.Errorf("mod secrets: %q", w.Secrets)
	}
	published := ivsrt.NewParticipantStreamEvent(&ivsrt.Event{StageARN: "arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA",
		Name: ivsrt.EventPublishStarted, Time: time.Now()}, "u")
	created := ivsrt.NewStageStreamEvent("arn:aws:ivs:us-east-1:123456789012:stage/AAAAAAAAAAAA", "s", ivsrt.StreamStageCreated, time.Now())
	if !b.Filter.MatchEvent(published, "us-east-1", "1") || b.Filter.MatchEvent(created, "us-east-1", "1") {
		t.Error("billing's filter")
	}
	for _, name := range []string{"webhook", "webhook-2"} {
		f := byName[name]
		if f.RetryFor != time.Hour || !f.Filter.MatchEvent(published, "", "") || f.Filter.MatchEvent(created, "", "") {
			t.Errorf("%s: %+v", name, f)
		}
	}
	if n := byName["bus"]; n.Kind != "nats" || strings.Contains(n.Target, "p@") || !strings.Contains(n.Target, "127.0.0.1:9") {
		t.Errorf("bus: %+v", n)
	}
}

func TestSinksRefused(t *testing.T) {
	for _, tc := range []struct {
		name, file string
		args       []string
		want       string
	}{
		{"unknown field", `{"webhooks": [{"name": "a", "url": "http://x/", "secret": "s", "retries": 3}]}`, nil, "unknown field"},
		{"no secret", `{"webhooks": [{"name": "a", "url": "http://x/"}]}`, nil, "secret"},
		{"secretEnv unset", `{"webhooks": [{"name": "a", "url": "http://x/", "secretEnv": "IVSRT_TEST_UNSET_SECRET"}]}`, nil, "not set"},
		{"bad name", `{"webhooks": [{"name": "a b", "url": "http://x/", "secret": "s"}]}`, nil, "name"},
		{"no name", `{"webhooks": [{"url": "http://x/", "secret": "s"}]}`, nil, "name"},
		{"bad url", `{"webhooks": [{"name": "a", "url": "ftp://x/", "secret": "s"}]}`, nil, "URL"},
		{"bad filter", `{"webhooks": [{"name": "a", "url": "http://x/", "secret": "s", "filter": {"detail": "x"}}]}`, nil, "pattern"},
		{"bad duration", `{"webhooks": [{"name": "a", "url": "http://x/", "secret": "s", "retryFor": "soon"}]}`, nil, "duration"},
		{"not json", `webhooks: []`, nil, "invalid"},
		{"too large", `{"webhooks": [], "x": "` + strings.Repeat("x", maxSinksFile) + `"}`, nil, "larger"},
		{"flag webhook without secret", "", []string{"--webhook-url", "http://x/"}, "secret"},
		{"bad flag filter", "", []string{"--webhook-url", "http://x/", "--webhook-secret", "s", "--webhook-filter", "[1]"}, "pattern"},
		{"negative retention", "", []string{"--event-retention", "-1h"}, "retention"},
		{"zero retry", "", []string{"--event-retry-for", "0s"}, "retry"},
		{"bad nats prefix", `{"nats": [{"name": "n", "url": "nats://127.0.0.1:9", "subjectPrefix": "a.>"}]}`, nil, "prefix"},
	} {
		_, err := sinksFrom(t, tc.file, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error with %q", tc.name, err, tc.want)
		}
	}
	// Two sinks of one name.
	m := NewMain()
	m.Config.DataDir = t.TempDir()
	path := filepath.Join(t.TempDir(), "sinks.json")
	os.WriteFile(path, []byte(`{"webhooks": [{"name": "a", "url": "http://x/", "secret": "s"}, {"name": "a", "url": "http://y/", "secret": "s"}]}`), 0o600)
	if err := m.ParseFlags([]string{"--listen", "127.0.0.1:0", "--data", t.TempDir(), "--event-sinks", path}); err != nil {
		t.Fatal(err)
	}
	if err := m.Run(testContext(t)); err == nil || !strings.Contains(err.Error(), "used twice") {
		t.Errorf("two sinks named a: got %v", err)
	}
	m.Close()
}
