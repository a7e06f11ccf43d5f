package cluster

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/postgres/pgtest"
)

func TestStagesHandler(t *testing.T) {
	db := openTestDB(t, pgtest.Start(t))
	ctx := testContext(t)
	n := &Node{cfg: Config{NodeID: "x", HeartbeatInterval: time.Second, DeadAfter: 10 * time.Second}, store: db, log: slog.New(slog.DiscardHandler),
		now: time.Now, nodes: map[string]*ivsrt.Node{}}
	newStage := func() ivsrt.StageARN {
		t.Helper()
		st := &ivsrt.Stage{ARN: ivsrt.NewStageARN("us-east-1", "123456789012", ivsrt.NewStageID())}
		if err := db.CreateStage(ctx, st, nil, ivsrt.StageQuota{}); err != nil {
			t.Fatalf("CreateStage: %v", err)
		}
		return st.ARN
	}
	record := func(arn ivsrt.StageARN, name ivsrt.EventName, p ivsrt.ParticipantID) {
		t.Helper()
		if err := db.RecordEvent(ctx, &ivsrt.Event{StageARN: arn, Name: name, ParticipantID: p}); err != nil {
			t.Fatalf("RecordEvent: %v", err)
		}
	}

	// A stage with two participants connected and one gone, hosted by y.
	live := newStage()
	p1, p2, p3 := ivsrt.NewParticipantID(), ivsrt.NewParticipantID(), ivsrt.NewParticipantID()
	for _, p := range []ivsrt.ParticipantID{p1, p2, p3} {
		record(live, ivsrt.EventJoined, p)
	}
	record(live, ivsrt.EventLeft, p3)
	until := time.Now().Add(time.Minute).UTC().Truncate(time.Millisecond)
	if _, err := db.ClaimStageHost(ctx, live, "y", until); err != nil {
		t.Fatal(err)
	}
	// A stage nobody has joined.
	idle := newStage()

	allow := func(http.ResponseWriter, *http.Request, []byte) bool { return true }
	deny := func(w http.ResponseWriter, _ *http.Request, _ []byte) bool {
		w.WriteHeader(http.StatusForbidden)
		return false
	}
	get := func(authorize func(http.ResponseWriter, *http.Request, []byte) bool, method, target string) *httptest.ResponseRecorder {
		t.Helper()
		w := httptest.NewRecorder()
		n.StagesHandler(authorize).ServeHTTP(w, httptest.NewRequestWithContext(ctx, method, target, nil))
		return w
	}
	query := func(arn ivsrt.StageARN) string { return StagesPath + "?arn=" + url.QueryEscape(string(arn)) }

	for _, tc := range []struct {
		name      string
		authorize func(http.ResponseWriter, *http.Request, []byte) bool
		method    string
		target    string
		status    int
		message   string
	}{
		{"another path", allow, http.MethodGet, StagesPath + "/x?arn=" + url.QueryEscape(string(live)), http.StatusNotFound, "Not found."},
		{"POST", allow, http.MethodPost, query(live), http.StatusMethodNotAllowed, "Use GET."},
		{"refused by authorize", deny, http.MethodGet, query(live), http.StatusForbidden, ""},
		{"no arn", allow, http.MethodGet, StagesPath, http.StatusBadRequest, "arn"},
		{"not a stage arn", allow, http.MethodGet, StagesPath + "?arn=arn:aws:ivs:us-east-1:123456789012:channel/abc", http.StatusBadRequest, "arn"},
		{"unknown stage", allow, http.MethodGet, query(ivsrt.NewStageARN("us-east-1", "123456789012", "nope")), http.StatusNotFound, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			w := get(tc.authorize, tc.method, tc.target)
			if w.Code != tc.status {
				t.Errorf("status: got %d, want %d (%s)", w.Code, tc.status, w.Body)
			}
			if tc.message != "" && !strings.Contains(w.Body.String(), tc.message) {
				t.Errorf("body: got %s, want a message with %q", w.Body, tc.message)
			}
		})
	}

	decode := func(w *httptest.ResponseRecorder) (StageView, map[string]any) {
		t.Helper()
		if w.Code != http.StatusOK || w.Header().Get("Content-Type") != "application/json" {
			t.Fatalf("got %d %s: %s", w.Code, w.Header().Get("Content-Type"), w.Body)
		}
		var v StageView
		var raw map[string]any
		if err := json.Unmarshal(w.Body.Bytes(), &v); err != nil {
			t.Fatal(err)
		}
		json.Unmarshal(w.Body.Bytes(), &raw)
		return v, raw
	}

	v, _ := decode(get(allow, http.MethodGet, query(live)))
	stg, err := db.GetStage(ctx, live)
	if err != nil {
		t.Fatal(err)
	}
	slices.SortFunc(v.Participants, func(a, b ParticipantView) int { return strings.Compare(string(a.ID), string(b.ID)) })
	none := []SubscriptionView{}
	want := []ParticipantView{{ID: p1, Node: "y", Subscriptions: none}, {ID: p2, Node: "y", Subscriptions: none}}
	slices.SortFunc(want, func(a, b ParticipantView) int { return strings.Compare(string(a.ID), string(b.ID)) })
	if v.Stage != live || v.Host != "y" || !v.LeaseUntil.Equal(until) || v.Session != stg.ActiveSessionID || !reflect.DeepEqual(v.Participants, want) {
		t.Errorf("stage with participants: got %+v, want host y until %v, session %s, participants %v", v, until, stg.ActiveSessionID, want)
	}

	v, raw := decode(get(nil, http.MethodGet, query(idle)))
	if v.Stage != idle || v.Host != "" || v.Session != "" || v.Participants == nil || len(v.Participants) != 0 {
		t.Errorf("idle stage: got %+v, want no host, no session, participants []", v)
	}
	if _, ok := raw["leaseUntil"]; ok {
		t.Errorf("idle stage: leaseUntil %v, want none", raw["leaseUntil"])
	}
}
