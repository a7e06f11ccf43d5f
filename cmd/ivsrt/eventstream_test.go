package main

import (
	"bufio"
	"context"
	"encoding/json"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/ivsrt/ivsrt"
)

// sseEvent is one event read from the event stream.
type sseEvent struct {
	ID, Event string
	Envelope  ivsrt.Envelope
}

// openEventStream opens the event stream of m with r and returns its events
// as they come; the channel closes when the stream ends.
func openEventStream(t *testing.T, r *http.Request) (<-chan sseEvent, func()) {
	t.Helper()
	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	resp, err := (&http.Client{Transport: tr}).Do(r)
	if err != nil {
		t.Fatalf("GET event stream: %v", err)
	}
	if resp.StatusCode != http.StatusOK {
		resp.Body.Close()
		t.Fatalf("GET event stream: got status %d, want 200", resp.StatusCode)
	}
	out := make(chan sseEvent, 100)
	go func() {
		defer close(out)
		sc := bufio.NewScanner(resp.Body)
		var ev sseEvent
		var data string
		for sc.Scan() {
			field, value, _ := strings.Cut(sc.Text(), ": ")
			switch field {
			case "id":
				ev.ID = value
			case "event":
				ev.Event = value
			case "data":
				data = value
			case "":
				if data != "" {
					if err := json.Unmarshal([]byte(data), &ev.Envelope); err != nil {
						t.Errorf("event data %q: %v", data, err)
					}
					out <- ev
				}
				ev, data = sseEvent{}, ""
			}
		}
	}()
	t.Cleanup(func() { resp.Body.Close() })
	return out, func() { resp.Body.Close() }
}

// nextEvents reads n events, failing the test if they take over 10 s.
func nextEvents(t *testing.T, ch <-chan sseEvent, n int) []sseEvent {
	t.Helper()
	var evs []sseEvent
	timeout := time.After(10 * time.Second)
	for len(evs) < n {
		select {
		case ev, ok := <-ch:
			if !ok {
				t.Fatalf("stream ended after %d events, want %d", len(evs), n)
			}
			evs = append(evs, ev)
		case <-timeout:
			t.Fatalf("got %d events in 10s, want %d", len(evs), n)
		}
	}
	return evs
}

func eventNamesOf(evs []sseEvent) []string {
	var names []string
	for _, ev := range evs {
		name, _ := ev.Envelope.Detail["event_name"].(string)
		names = append(names, name)
	}
	return names
}

func TestEventStream(t *testing.T) {
	m, c := startServer(t)
	ctx := testContext(t)

	// Unsigned requests are refused outside --dev.
	if ex := send(t, newRequest(t, m, http.MethodGet, "/v1/events/stream", "")); ex.Status != http.StatusForbidden {
		t.Errorf("unsigned GET: got status %d, want 403", ex.Status)
	}

	stream, closeStream := openEventStream(t, newSignedRequest(t, m, http.MethodGet, "/v1/events/stream?after=0", "", testAccessKeyID, testSecretAccessKey))
	out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("streamed")})
	if err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	arn := aws.ToString(out.Stage.Arn)
	if _, err := c.UpdateStage(ctx, &ivsrealtime.UpdateStageInput{Arn: out.Stage.Arn, Name: aws.String("renamed")}); err != nil {
		t.Fatalf("UpdateStage: %v", err)
	}
	if _, err := c.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: out.Stage.Arn}); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	evs := nextEvents(t, stream, 3)
	if got, want := eventNamesOf(evs), []string{"Stage Created", "Stage Updated", "Stage Deleted"}; !slices.Equal(got, want) {
		t.Fatalf("events: got %v, want %v", got, want)
	}
	for _, ev := range evs {
		e := ev.Envelope
		if ev.Event != "IVS Stage Change" || e.DetailType != ev.Event || e.Version != "0" || e.Source != "aws.ivs" ||
			e.Region != testRegion || e.Account != m.Config.AccountID || !slices.Equal(e.Resources, []string{arn}) {
			t.Errorf("envelope %s: got %+v", ev.ID, e)
		}
		if _, err := time.Parse(time.RFC3339, e.Time); err != nil {
			t.Errorf("envelope %s: time %q: %v", ev.ID, e.Time, err)
		}
	}

	// A restart while the stream is open ends it, and a client resuming
	// from the first event gets the rest, with the same ids.
	m, _ = restartServer(t, m)
	closeStream()
	r := newSignedRequest(t, m, http.MethodGet, "/v1/events/stream", "", testAccessKeyID, testSecretAccessKey)
	r.Header.Set("Last-Event-ID", evs[0].ID)
	resumed := nextEvents(t, mustStream(t, r), 2)
	for i, ev := range resumed {
		if want := evs[i+1]; ev.ID != want.ID || ev.Envelope.ID != want.Envelope.ID {
			t.Errorf("resumed event %d: got id %s (%s), want %s (%s)", i, ev.ID, ev.Envelope.ID, want.ID, want.Envelope.ID)
		}
	}
}

func mustStream(t *testing.T, r *http.Request) <-chan sseEvent {
	t.Helper()
	ch, _ := openEventStream(t, r)
	return ch
}

func TestEventStreamDev(t *testing.T) {
	m, c := startServer(t, withDev())
	ctx, cancel := context.WithTimeout(testContext(t), 30*time.Second)
	defer cancel()
	// --dev trusts every caller: a browser's EventSource cannot sign.
	stream := mustStream(t, newRequest(t, m, http.MethodGet, "/v1/events/stream", ""))
	if _, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("dev")}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	if got := eventNamesOf(nextEvents(t, stream, 1)); !slices.Equal(got, []string{"Stage Created"}) {
		t.Errorf("events: got %v, want [Stage Created]", got)
	}
}
