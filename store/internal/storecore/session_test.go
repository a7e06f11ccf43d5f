package storecore

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
)

// memTx keeps one stage's sessions in memory.
type memTx struct {
	active       ivsrt.SessionID
	ended        []ivsrt.SessionID
	participants map[ivsrt.ParticipantID]*ivsrt.Participant
	events       []*ivsrt.Event
	stream       []string // event names
}

func (m *memTx) ActiveSession(context.Context, ivsrt.StageARN) (ivsrt.SessionID, error) {
	return m.active, nil
}

func (m *memTx) StartSession(_ context.Context, _ ivsrt.StageARN, id ivsrt.SessionID, _ time.Time) error {
	m.active, m.participants = id, map[ivsrt.ParticipantID]*ivsrt.Participant{}
	return nil
}

func (m *memTx) EndSession(_ context.Context, _ ivsrt.StageARN, id ivsrt.SessionID, _ time.Time) error {
	m.active, m.ended = "", append(m.ended, id)
	return nil
}

func (m *memTx) Join(_ context.Context, p *ivsrt.Participant) (string, error) {
	if have := m.participants[p.ID]; have != nil {
		have.State = ivsrt.ParticipantConnected
		return have.UserID, nil
	}
	m.participants[p.ID] = p
	return p.UserID, nil
}

func (m *memTx) ParticipantState(_ context.Context, _ ivsrt.SessionID, id ivsrt.ParticipantID) (ivsrt.ParticipantState, string, error) {
	if p := m.participants[id]; p != nil {
		return p.State, p.UserID, nil
	}
	return "", "", nil
}

func (m *memTx) AddEvent(_ context.Context, ev *ivsrt.Event) error {
	m.events = append(m.events, ev)
	return nil
}

func (m *memTx) MarkPublished(_ context.Context, _ ivsrt.SessionID, id ivsrt.ParticipantID) error {
	m.participants[id].Published = true
	return nil
}

func (m *memTx) Disconnect(_ context.Context, _ ivsrt.SessionID, id ivsrt.ParticipantID) error {
	m.participants[id].State = ivsrt.ParticipantDisconnected
	return nil
}

func (m *memTx) ExchangeToken(_ context.Context, _ ivsrt.SessionID, id ivsrt.ParticipantID, tok *ivsrt.ExchangedToken) error {
	p := m.participants[id]
	p.UserID, p.Attributes = tok.UserID, tok.Attributes
	return nil
}

func (m *memTx) AnyConnected(context.Context, ivsrt.SessionID) (bool, error) {
	for _, p := range m.participants {
		if p.State == ivsrt.ParticipantConnected {
			return true, nil
		}
	}
	return false, nil
}

func (m *memTx) AppendEvents(_ context.Context, evs ...*ivsrt.StreamEvent) error {
	for _, ev := range evs {
		m.stream = append(m.stream, ev.EventName())
	}
	return nil
}

func TestRecordEvent(t *testing.T) {
	const stage = ivsrt.StageARN("arn:aws:ivs:us-east-1:123456789012:stage/abcdefghijkl")
	ev := func(name ivsrt.EventName, p ivsrt.ParticipantID) *ivsrt.Event {
		return &ivsrt.Event{StageARN: stage, Name: name, ParticipantID: p, UserID: "user-" + string(p), Time: time.Unix(1, 0)}
	}
	tests := []struct {
		name     string
		events   []*ivsrt.Event
		wantCode string   // of the last event
		stream   []string // of all events
		filed    int      // participant events filed
		active   bool     // a session is active at the end
	}{
		{"join starts a session", []*ivsrt.Event{ev(ivsrt.EventJoined, "a")}, "",
			[]string{ivsrt.StreamSessionStarted, ivsrt.StreamParticipantJoined}, 1, true},
		{"second join keeps it", []*ivsrt.Event{ev(ivsrt.EventJoined, "a"), ev(ivsrt.EventJoined, "b")}, "",
			[]string{ivsrt.StreamSessionStarted, ivsrt.StreamParticipantJoined, ivsrt.StreamParticipantJoined}, 2, true},
		{"last leave ends it", []*ivsrt.Event{ev(ivsrt.EventJoined, "a"), ev(ivsrt.EventLeft, "a")}, "",
			[]string{ivsrt.StreamSessionStarted, ivsrt.StreamParticipantJoined, ivsrt.StreamParticipantLeft, ivsrt.StreamSessionEnded}, 2, false},
		{"leave of one of two keeps it", []*ivsrt.Event{ev(ivsrt.EventJoined, "a"), ev(ivsrt.EventJoined, "b"), ev(ivsrt.EventLeft, "a")}, "",
			[]string{ivsrt.StreamSessionStarted, ivsrt.StreamParticipantJoined, ivsrt.StreamParticipantJoined, ivsrt.StreamParticipantLeft}, 3, true},
		{"join error in an idle stage is dropped", []*ivsrt.Event{ev(ivsrt.EventJoinError, "a")}, "", nil, 0, false},
		{"join error in a session is filed", []*ivsrt.Event{ev(ivsrt.EventJoined, "a"), ev(ivsrt.EventJoinError, "b")}, "",
			[]string{ivsrt.StreamSessionStarted, ivsrt.StreamParticipantJoined, ivsrt.StreamParticipantJoinError}, 2, true},
		{"publish in an idle stage", []*ivsrt.Event{ev(ivsrt.EventPublishStarted, "a")}, ivsrt.ECONFLICT, nil, 0, false},
		{"publish of a stranger", []*ivsrt.Event{ev(ivsrt.EventJoined, "a"), ev(ivsrt.EventPublishStarted, "b")}, ivsrt.ECONFLICT,
			[]string{ivsrt.StreamSessionStarted, ivsrt.StreamParticipantJoined}, 1, true},
		{"publish after leaving", []*ivsrt.Event{ev(ivsrt.EventJoined, "a"), ev(ivsrt.EventJoined, "b"), ev(ivsrt.EventLeft, "a"), ev(ivsrt.EventPublishStarted, "a")}, ivsrt.ECONFLICT,
			[]string{ivsrt.StreamSessionStarted, ivsrt.StreamParticipantJoined, ivsrt.StreamParticipantJoined, ivsrt.StreamParticipantLeft}, 3, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tx := &memTx{}
			var err error
			for _, e := range tt.events {
				err = RecordEvent(context.Background(), tx, e)
			}
			if got := ivsrt.ErrorCode(err); got != tt.wantCode {
				t.Errorf("error: got %v, want code %q", err, tt.wantCode)
			}
			if !slices.Equal(tx.stream, tt.stream) {
				t.Errorf("stream: got %v, want %v", tx.stream, tt.stream)
			}
			if len(tx.events) != tt.filed {
				t.Errorf("events filed: got %d, want %d", len(tx.events), tt.filed)
			}
			if got := tx.active != ""; got != tt.active {
				t.Errorf("session active: got %v, want %v", got, tt.active)
			}
		})
	}
}

func TestRecordEventRejoinKeepsUserID(t *testing.T) {
	const stage = ivsrt.StageARN("arn:aws:ivs:us-east-1:123456789012:stage/abcdefghijkl")
	tx := &memTx{}
	ctx := context.Background()
	for _, e := range []*ivsrt.Event{
		{StageARN: stage, Name: ivsrt.EventJoined, ParticipantID: "a", UserID: "first"},
		{StageARN: stage, Name: ivsrt.EventJoined, ParticipantID: "b", UserID: "other"},
		{StageARN: stage, Name: ivsrt.EventLeft, ParticipantID: "a"},
		{StageARN: stage, Name: ivsrt.EventJoined, ParticipantID: "a", UserID: "second"},
		{StageARN: stage, Name: ivsrt.EventPublishStarted, ParticipantID: "a"},
	} {
		if err := RecordEvent(ctx, tx, e); err != nil {
			t.Fatalf("%s of %s: %v", e.Name, e.ParticipantID, err)
		}
		if e.SessionID != tx.active {
			t.Errorf("%s of %s: session got %q, want %q", e.Name, e.ParticipantID, e.SessionID, tx.active)
		}
	}
	p := tx.participants["a"]
	if p.UserID != "first" || p.Protocol != UnknownProtocol || !p.Published || p.State != ivsrt.ParticipantConnected {
		t.Errorf("participant: got %+v, want user first, protocol %s, published, connected", p, UnknownProtocol)
	}
}

func TestRecordEventJoinOfEncoder(t *testing.T) {
	const (
		stage  = ivsrt.StageARN("arn:aws:ivs:us-east-1:123456789012:stage/abcdefghijkl")
		ingest = ivsrt.IngestConfigurationARN("arn:aws:ivs:us-east-1:123456789012:ingest-configuration/abcdefghijkl")
	)
	tx := &memTx{}
	ctx := context.Background()
	for _, e := range []*ivsrt.Event{
		{StageARN: stage, Name: ivsrt.EventJoined, ParticipantID: "a", Protocol: "RTMPS", IngestConfigurationARN: ingest, RedundantIngest: true},
		{StageARN: stage, Name: ivsrt.EventJoined, ParticipantID: "b", Protocol: "WHIP"},
	} {
		if err := RecordEvent(ctx, tx, e); err != nil {
			t.Fatalf("%s of %s: %v", e.Name, e.ParticipantID, err)
		}
	}
	if p := tx.participants["a"]; p.IngestConfigurationARN != ingest || !p.RedundantIngest {
		t.Errorf("encoder: got ingest configuration %q, redundant %v, want %q, true", p.IngestConfigurationARN, p.RedundantIngest, ingest)
	}
	if p := tx.participants["b"]; p.IngestConfigurationARN != "" || p.RedundantIngest {
		t.Errorf("WHIP participant: got ingest configuration %q, redundant %v, want none", p.IngestConfigurationARN, p.RedundantIngest)
	}
}
