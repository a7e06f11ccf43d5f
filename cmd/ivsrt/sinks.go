package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt/events"
	"github.com/ivsrt/ivsrt/events/natssink"
)

// sinksFile is the file --event-sinks names: the destinations of the event
// stream, several of each kind if need be. Durations are Go durations
// ("90s", "24h"). See docs/events.md.
type sinksFile struct {
	Webhooks []webhookEntry `json:"webhooks"`
	NATS     []natsEntry    `json:"nats"`
}

// sinkEntry is what every kind of sink has.
type sinkEntry struct {
	Name        string          `json:"name"`
	Filter      json.RawMessage `json:"filter,omitempty"` // an EventBridge-style event pattern
	RetryFor    duration        `json:"retryFor,omitzero"`
	MinBackoff  duration        `json:"minBackoff,omitzero"`
	MaxBackoff  duration        `json:"maxBackoff,omitzero"`
	Timeout     duration        `json:"timeout,omitzero"`
	Concurrency int             `json:"concurrency,omitzero"`
}

type webhookEntry struct {
	sinkEntry
	URL       string   `json:"url"`
	Secret    string   `json:"secret,omitempty"`
	Secrets   []string `json:"secrets,omitempty"`   // for rotation: the first signs as current
	SecretEnv string   `json:"secretEnv,omitempty"` // or the secret from this environment variable
}

type natsEntry struct {
	sinkEntry
	URL           string `json:"url"`
	SubjectPrefix string `json:"subjectPrefix,omitempty"`
	JetStream     bool   `json:"jetstream,omitempty"`
}

// duration is a time.Duration written as "24h" in JSON.
type duration time.Duration

func (d *duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return errors.New(`want a duration such as "90s" or "24h"`)
	}
	v, err := time.ParseDuration(s)
	if err != nil || v < 0 {
		return fmt.Errorf("%q: want a duration such as \"90s\" or \"24h\"", s)
	}
	*d = duration(v)
	return nil
}

// maxSinksFile bounds the sinks file, which is read whole.
const maxSinksFile = 1 << 20

// sinkSet is the configured sinks, with what must be closed after the relay.
type sinkSet struct {
	configs []events.SinkConfig
	closers []func()
}

func (s *sinkSet) close() {
	for _, c := range s.closers {
		c()
	}
}

// buildSinks turns the flags and the sinks file into sink configurations.
func (m *Main) buildSinks() (*sinkSet, error) {
	c := m.Config
	set := &sinkSet{}
	fail := func(err error) (*sinkSet, error) {
		set.close()
		return nil, err
	}
	var file sinksFile
	if c.EventSinksFile != "" {
		f, err := os.Open(c.EventSinksFile)
		if err != nil {
			return fail(fmt.Errorf("--event-sinks: %w", err))
		}
		data, err := readLimited(f, maxSinksFile)
		f.Close()
		if err != nil {
			return fail(fmt.Errorf("--event-sinks %s: %w", c.EventSinksFile, err))
		}
		dec := json.NewDecoder(bytes.NewReader(data))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&file); err != nil {
			return fail(fmt.Errorf("--event-sinks %s: %w", c.EventSinksFile, err))
		}
	}

	// The flags add one sink of each kind, named after it.
	for i, u := range c.WebhookURLs {
		name := "webhook"
		if i > 0 {
			name = fmt.Sprintf("webhook-%d", i+1)
		}
		e := webhookEntry{sinkEntry: sinkEntry{Name: name, RetryFor: duration(c.EventRetryFor)}, URL: u, Secret: c.WebhookSecret}
		if c.WebhookFilter != "" {
			e.Filter = json.RawMessage(c.WebhookFilter)
		}
		file.Webhooks = append(file.Webhooks, e)
	}
	if c.NATSURL != "" {
		file.NATS = append(file.NATS, natsEntry{sinkEntry: sinkEntry{Name: "nats", RetryFor: duration(c.EventRetryFor)},
			URL: c.NATSURL, SubjectPrefix: c.NATSSubjectPrefix, JetStream: c.NATSJetStream})
	}

	for _, e := range file.Webhooks {
		secrets := e.Secrets
		if e.Secret != "" {
			secrets = append([]string{e.Secret}, secrets...)
		}
		if e.SecretEnv != "" {
			v := os.Getenv(e.SecretEnv)
			if v == "" {
				return fail(fmt.Errorf("webhook %q: the environment variable %s is not set", e.Name, e.SecretEnv))
			}
			secrets = append([]string{v}, secrets...)
		}
		if len(secrets) == 0 {
			return fail(fmt.Errorf("webhook %q: a secret to sign requests with is required (--webhook-secret, or secret in the sinks file)", e.Name))
		}
		w, err := events.NewWebhook(e.URL, secrets...)
		if err != nil {
			return fail(fmt.Errorf("webhook %q: %w", e.Name, err))
		}
		sc, err := e.sinkConfig("webhook", events.Redact(e.URL), w)
		if err != nil {
			return fail(err)
		}
		set.configs = append(set.configs, sc)
	}
	for _, e := range file.NATS {
		prefix := e.SubjectPrefix
		if prefix == "" {
			prefix = "ivs"
		}
		s, err := natssink.New(natssink.Config{URL: e.URL, SubjectPrefix: prefix, JetStream: e.JetStream},
			m.Logger.With("component", "nats", "sink", e.Name))
		if err != nil {
			return fail(fmt.Errorf("nats sink %q: %w", e.Name, err))
		}
		set.closers = append(set.closers, s.Close)
		sc, err := e.sinkConfig("nats", s.Target(), s)
		if err != nil {
			return fail(err)
		}
		set.configs = append(set.configs, sc)
	}
	return set, nil
}

func (e *sinkEntry) sinkConfig(kind, target string, sender events.Sender) (events.SinkConfig, error) {
	if e.Name == "" || len(e.Name) > 64 || strings.Trim(e.Name, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.") != "" {
		return events.SinkConfig{}, fmt.Errorf("%s sink name %q: want 1 to 64 letters, digits, '-', '_' or '.'", kind, e.Name)
	}
	filter, err := events.ParsePattern(string(e.Filter))
	if err != nil {
		return events.SinkConfig{}, fmt.Errorf("%s sink %q: %w", kind, e.Name, err)
	}
	return events.SinkConfig{
		Name: e.Name, Kind: kind, Target: target, Sender: sender, Filter: filter,
		RetryFor:    time.Duration(e.RetryFor),
		MinBackoff:  time.Duration(e.MinBackoff),
		MaxBackoff:  time.Duration(e.MaxBackoff),
		Timeout:     time.Duration(e.Timeout),
		Concurrency: e.Concurrency,
	}, nil
}

// readLimited reads r whole, refusing more than limit bytes.
func readLimited(r io.Reader, limit int64) ([]byte, error) {
	data, err := io.ReadAll(io.LimitReader(r, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(data)) > limit {
		return nil, fmt.Errorf("larger than %d bytes", limit)
	}
	return data, nil
}
