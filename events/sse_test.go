package events

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
)

// memStream is an in-memory ivsrt.EventStream.
type memStream struct {
	mu     sync.Mutex
	events []*ivsrt.StreamEvent
}

func (s *memStream) ReadEvents(ctx context.Context, after int64, limit int) ([]*ivsrt.StreamEvent, error) {
	if limit < 1 {
		return nil, ivsrt.Errorf(ivsrt.EINVALID, "limit %d", limit)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []*ivsrt.StreamEvent
	for _, ev := range s.events {
		if ev.Seq > after && len(out) < limit {
			out = append(out, ev)
		}
	}
	return out, nil
}

func (s *memStream) LastEventSeq(ctx context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.events) == 0 {
		return 0, nil
	}
	return s.events[len(s.events)-1].Seq, nil
}

// add appends a participant event of stage and returns it.
func (s *memStream) add(stage ivsrt.StageARN, name ivsrt.EventName) *ivsrt.StreamEvent {
	s.mu.Lock()
	defer s.mu.Unlock()
	ev := ivsrt.NewParticipantStreamEvent(&ivsrt.Event{StageARN: stage, SessionID: "st-AAAAAAAAAAAAA", Name: name,
		ParticipantID: "pPPPPPPPPPPP", Time: time.Date(2025, 6, 1, 12, 0, 0, 123e6, time.UTC)}, "user")
	ev.Seq = int64(len(s.events) + 1)
	s.events = append(s.events, ev)
	return ev
}

var (
	stageA = ivsrt.NewStageARN("eu-west-1", "111122223333", "AAAAAAAAAAAA")
	stageB = ivsrt.NewStageARN("eu-west-1", "111122223333", "BBBBBBBBBBBB")
)

// frame is one event, or comment, read from a stream.
type frame struct {
	id, event, data string
	comment         string
}

// client is an open stream.
type client struct {
	t      *testing.T
	resp   *http.Response
	frames chan frame
}

func newServer(t *testing.T, s *memStream, cfg Config) (*httptest.Server, *Handler) {
	t.Helper()
	if cfg.PollInterval == 0 {
		cfg.PollInterval = 10 * time.Millisecond
	}
	cfg.Region, cfg.AccountID = "eu-west-1", "111122223333"
	h := NewHandler(s, cfg)
	srv := httptest.NewServer(h)
	t.Cleanup(func() {
		h.Close()
		srv.Close()
	})
	return srv, h
}

// open requests the stream at srv with query and header; it fails the test
// unless the answer is 200.
func open(t *testing.T, srv *httptest.Server, query string, header http.Header) *client {
	t.Helper()
	resp := request(t, srv, query, header)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s?%s: got status %d, want 200", StreamPath, query, resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "text/event-stream" {
		t.Errorf("Content-Type: got %q, want text/event-stream", ct)
	}
	c := &client{t: t, resp: resp, frames: make(chan frame, 100)}
	go c.read()
	t.Cleanup(func() { resp.Body.Close() })
	// The opening comment tells that the server is following.
	if f := c.next(); f.comment != "stream open" {
		t.Fatalf("first frame: got %+v, want the opening comment", f)
	}
	return c
}

func request(t *testing.T, srv *httptest.Server, query string, header http.Header) *http.Response {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	t.Cleanup(cancel)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, srv.URL+StreamPath+"?"+query, nil)
	if err != nil {
		t.Fatal(err)
	}
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatalf("GET: %v", err)
	}
	return resp
}

func (c *client) read() {
	defer close(c.frames)
	sc := bufio.NewScanner(c.resp.Body)
	var f frame
	for sc.Scan() {
		line := sc.Text()
		if line == "" {
			c.frames <- f
			f = frame{}
			continue
		}
		field, value, _ := strings.Cut(line, ":")
		value = strings.TrimPrefix(value, " ")
		switch field {
		case "":
			f.comment = value
		case "id":
			f.id = value
		case "event":
			f.event = value
		case "data":
			f.data = value
		}
	}
}

// next returns the next frame, failing the test if none comes within 5 s.
func (c *client) next() frame {
	c.t.Helper()
	select {
	case f, ok := <-c.frames:
		if !ok {
			c.t.Fatal("stream ended")
		}
		return f
	case <-time.After(5 * time.Second):
		c.t.Fatal("no frame within 5s")
	}
	return frame{}
}

// events returns the next n events, skipping comments.
func (c *client) events(n int) []frame {
	c.t.Helper()
	var out []frame
	for len(out) < n {
		if f := c.next(); f.comment == "" {
			out = append(out, f)
		}
	}
	return out
}

// quiet checks that no event arrives within d.
func (c *client) quiet(d time.Duration) {
	c.t.Helper()
	deadline := time.After(d)
	for {
		select {
		case f, ok := <-c.frames:
			if ok && f.comment == "" {
				c.t.Errorf("unexpected event %s %s", f.id, f.data)
			}
		case <-deadline:
			return
		}
	}
}

func ids(frames []frame) []string {
	var out []string
	for _, f := range frames {
		out = append(out, f.id)
	}
	return out
}

func seqs(evs ...*ivsrt.StreamEvent) []string {
	var out []string
	for _, ev := range evs {
		out = append(out, strconv.FormatInt(ev.Seq, 10))
	}
	return out
}

func TestStreamInOrder(t *testing.T) {
	s := &memStream{}
	srv, _ := newServer(t, s, Config{})
	old := s.add(stageA, ivsrt.EventJoined)
	c := open(t, srv, "", nil) // from now on: old is not replayed
	var want []*ivsrt.StreamEvent
	for i := 0; i < 5; i++ {
		want = append(want, s.add(stageA, ivsrt.EventPublishStarted), s.add(stageB, ivsrt.EventPublishStopped))
	}
	got := c.events(len(want))
	if !slices.Equal(ids(got), seqs(want...)) {
		t.Errorf("ids: got %v, want %v (not %s)", ids(got), seqs(want...), seqs(old))
	}

	var env map[string]any
	if err := json.Unmarshal([]byte(got[0].data), &env); err != nil {
		t.Fatalf("data: %v", err)
	}
	wantEnv := map[string]any{
		"version":     "0",
		"id":          want[0].ID,
		"detail-type": "IVS Stage Update",
		"source":      "aws.ivs",
		"account":     "111122223333",
		"time":        "2025-06-01T12:00:00Z",
		"region":      "eu-west-1",
		"resources":   []any{string(stageA)},
		"detail": map[string]any{"session_id": "st-AAAAAAAAAAAAA", "event_name": "Participant Published",
			"user_id": "user", "participant_id": "pPPPPPPPPPPP"},
	}
	if fmt.Sprint(env) != fmt.Sprint(wantEnv) {
		t.Errorf("envelope: got %v, want %v", env, wantEnv)
	}
	if got[0].event != "IVS Stage Update" {
		t.Errorf("event: got %q, want IVS Stage Update", got[0].event)
	}
}

func TestStreamFilters(t *testing.T) {
	s := &memStream{}
	srv, _ := newServer(t, s, Config{})
	tests := []struct {
		name  string
		query url.Values
		want  func(ev *ivsrt.StreamEvent) bool
	}{
		{"stage", url.Values{"stageArn": {string(stageB)}},
			func(ev *ivsrt.StreamEvent) bool { return ev.StageARN == stageB }},
		{"event names", url.Values{"eventName": {"Participant Published", "Participant Left"}},
			func(ev *ivsrt.StreamEvent) bool {
				return ev.EventName() == "Participant Published" || ev.EventName() == "Participant Left"
			}},
		{"both", url.Values{"stageArn": {string(stageA), "arn:aws:ivs:eu-west-1:111122223333:stage/none"}, "eventName": {"Participant Joined"}},
			func(ev *ivsrt.StreamEvent) bool {
				return ev.StageARN == stageA && ev.EventName() == "Participant Joined"
			}},
	}
	var all []*ivsrt.StreamEvent
	for _, stage := range []ivsrt.StageARN{stageA, stageB, stageA} {
		for _, name := range []ivsrt.EventName{ivsrt.EventJoined, ivsrt.EventPublishStarted, ivsrt.EventLeft} {
			all = append(all, s.add(stage, name))
		}
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var want []*ivsrt.StreamEvent
			for _, ev := range all {
				if tt.want(ev) {
					want = append(want, ev)
				}
			}
			q := tt.query
			q.Set("after", "0")
			c := open(t, srv, q.Encode(), nil)
			got := c.events(len(want))
			if !slices.Equal(ids(got), seqs(want...)) {
				t.Errorf("ids: got %v, want %v", ids(got), seqs(want...))
			}
			c.quiet(50 * time.Millisecond)
		})
	}
}

func TestStreamResume(t *testing.T) {
	s := &memStream{}
	srv, _ := newServer(t, s, Config{BatchSize: 2})
	var all []*ivsrt.StreamEvent
	for i := 0; i < 4; i++ {
		all = append(all, s.add(stageA, ivsrt.EventPublishStarted))
	}
	c := open(t, srv, "after=0", nil)
	first := c.events(3)
	if !slices.Equal(ids(first), seqs(all[:3]...)) {
		t.Fatalf("ids: got %v, want %v", ids(first), seqs(all[:3]...))
	}
	c.resp.Body.Close()
	// Missed while away.
	for i := 0; i < 5; i++ {
		all = append(all, s.add(stageA, ivsrt.EventPublishStopped))
	}
	for _, how := range []string{"Last-Event-ID", "after"} {
		t.Run(how, func(t *testing.T) {
			var c *client
			if how == "after" {
				c = open(t, srv, "after="+first[2].id, nil)
			} else {
				// The header wins over the query.
				c = open(t, srv, "after=0", http.Header{"Last-Event-Id": {first[2].id}})
			}
			got := c.events(len(all) - 3)
			if !slices.Equal(ids(got), seqs(all[3:]...)) {
				t.Errorf("ids: got %v, want %v", ids(got), seqs(all[3:]...))
			}
			c.quiet(50 * time.Millisecond)
		})
	}
}

func TestStreamKeepAlive(t *testing.T) {
	srv, _ := newServer(t, &memStream{}, Config{KeepAlive: 20 * time.Millisecond})
	c := open(t, srv, "", nil)
	if f := c.next(); f.comment != "keep-alive" {
		t.Errorf("frame: got %+v, want a keep-alive comment", f)
	}
}

func TestStreamClose(t *testing.T) {
	srv, h := newServer(t, &memStream{}, Config{})
	c := open(t, srv, "", nil)
	h.Close()
	select {
	case _, ok := <-c.frames:
		for ok {
			_, ok = <-c.frames
		}
	case <-time.After(5 * time.Second):
		t.Fatal("stream still open 5s after Close")
	}
	if resp := request(t, srv, "", nil); resp.StatusCode != http.StatusServiceUnavailable {
		t.Errorf("after Close: got status %d, want 503", resp.StatusCode)
	}
}

func TestStreamRefusals(t *testing.T) {
	srv, _ := newServer(t, &memStream{}, Config{Authorize: func(w http.ResponseWriter, r *http.Request, _ []byte) bool {
		if r.Header.Get("Authorization") == "ok" {
			return true
		}
		writeError(w, http.StatusForbidden, "Missing Authentication Token")
		return false
	}})
	tests := []struct {
		name   string
		method string
		query  string
		header http.Header
		status int
	}{
		{"unsigned", http.MethodGet, "", nil, http.StatusForbidden},
		{"bad Last-Event-ID", http.MethodGet, "", http.Header{"Authorization": {"ok"}, "Last-Event-Id": {"x"}}, http.StatusBadRequest},
		{"negative after", http.MethodGet, "after=-1", http.Header{"Authorization": {"ok"}}, http.StatusBadRequest},
		{"POST", http.MethodPost, "", http.Header{"Authorization": {"ok"}}, http.StatusMethodNotAllowed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := http.NewRequestWithContext(t.Context(), tt.method, srv.URL+StreamPath+"?"+tt.query, nil)
			if err != nil {
				t.Fatal(err)
			}
			for k, v := range tt.header {
				req.Header[k] = v
			}
			resp, err := srv.Client().Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Errorf("status: got %d, want %d", resp.StatusCode, tt.status)
			}
			var body struct{ Message string }
			if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Message == "" {
				t.Errorf("body: got %+v, %v, want a message", body, err)
			}
		})
	}
	open(t, srv, "", http.Header{"Authorization": {"ok"}})
}
