package ivsrt

import (
	"context"
	"crypto/rand"
	"fmt"
	"time"
)

// Detail types of the event stream. The first is the one the real service
// sends; the second is ivsrt's own, for changes made through the API.
const (
	DetailTypeStageUpdate = "IVS Stage Update"
	DetailTypeStageChange = "IVS Stage Change"
)

// Event names of the event stream (the detail's "event_name"). The first
// three are those of the real service; the others are ivsrt's own
// extensions, documented in docs/events.md.
const (
	StreamParticipantPublished    = "Participant Published"
	StreamParticipantUnpublished  = "Participant Unpublished"
	StreamParticipantPublishError = "Participant Publish Error"

	StreamParticipantJoined         = "Participant Joined"
	StreamParticipantLeft           = "Participant Left"
	StreamParticipantSubscribed     = "Participant Subscribed"
	StreamParticipantUnsubscribed   = "Participant Unsubscribed"
	StreamParticipantSubscribeError = "Participant Subscribe Error"
	StreamParticipantJoinError      = "Participant Join Error"
	StreamSessionStarted            = "Session Started"
	StreamSessionEnded              = "Session Ended"
	StreamStageCreated              = "Stage Created"
	StreamStageUpdated              = "Stage Updated"
	StreamStageDeleted              = "Stage Deleted"
)

// streamNames maps participant events to their names in the event stream.
var streamNames = map[EventName]string{
	EventJoined:           StreamParticipantJoined,
	EventLeft:             StreamParticipantLeft,
	EventPublishStarted:   StreamParticipantPublished,
	EventPublishStopped:   StreamParticipantUnpublished,
	EventPublishError:     StreamParticipantPublishError,
	EventSubscribeStarted: StreamParticipantSubscribed,
	EventSubscribeStopped: StreamParticipantUnsubscribed,
	EventSubscribeError:   StreamParticipantSubscribeError,
	EventJoinError:        StreamParticipantJoinError,
}

// StreamEvent is one entry of the event stream: a durable, ordered log
// written in the same transaction as the fact it tells of.
type StreamEvent struct {
	Seq        int64  // position in the log, from 1, increasing
	ID         string // UUID v4, fixed when the event is written, so stable across deliveries
	Time       time.Time
	StageARN   StageARN
	DetailType string
	Detail     map[string]any // the envelope's detail; "event_name" is always set
}

// EventName returns the detail's event_name.
func (e *StreamEvent) EventName() string {
	s, _ := e.Detail["event_name"].(string)
	return s
}

// NewParticipantStreamEvent returns the stream event of a recorded
// participant event, whose SessionID and Time are set. userID is the
// participant's, as the store knows it. Error events carry error_code;
// subscribe events carry the publisher as remote_participant_id; those of
// a replica, or whose publisher is one, carry replica true.
func NewParticipantStreamEvent(ev *Event, userID string) *StreamEvent {
	name, ok := streamNames[ev.Name]
	if !ok {
		name = string(ev.Name)
	}
	detail := map[string]any{
		"session_id":     string(ev.SessionID),
		"event_name":     name,
		"user_id":        userID,
		"participant_id": string(ev.ParticipantID),
	}
	if ev.ErrorCode != "" {
		detail["error_code"] = ev.ErrorCode
	}
	if ev.RemoteParticipantID != "" {
		detail["remote_participant_id"] = string(ev.RemoteParticipantID)
	}
	if ev.Replica {
		detail["replica"] = true
	}
	return newStreamEvent(ev.StageARN, ev.Time, DetailTypeStageUpdate, detail)
}

// NewSessionStreamEvent returns "Session Started" or "Session Ended" (name)
// of a stage session.
func NewSessionStreamEvent(stage StageARN, session SessionID, name string, at time.Time) *StreamEvent {
	return newStreamEvent(stage, at, DetailTypeStageUpdate, map[string]any{
		"session_id": string(session),
		"event_name": name,
	})
}

// NewStageStreamEvent returns "Stage Created", "Stage Updated" or "Stage
// Deleted" (name) of a stage with the given name.
func NewStageStreamEvent(stage StageARN, stageName, name string, at time.Time) *StreamEvent {
	return newStreamEvent(stage, at, DetailTypeStageChange, map[string]any{
		"event_name": name,
		"stage_name": stageName,
	})
}

func newStreamEvent(stage StageARN, at time.Time, detailType string, detail map[string]any) *StreamEvent {
	return &StreamEvent{ID: NewEventID(), Time: at, StageARN: stage, DetailType: detailType, Detail: detail}
}

// NewEventID returns a random (version 4) UUID.
func NewEventID() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("ivsrt: crypto/rand failed: " + err.Error()) // never on supported systems
	}
	b[6] = b[6]&0x0f | 0x40 // version 4
	b[8] = b[8]&0x3f | 0x80 // RFC 9562 variant
	return fmt.Sprintf("%x-%x-%x-%x-%x", b[0:4], b[4:6], b[6:8], b[8:10], b[10:16])
}

// Envelope is a StreamEvent in the shape EventBridge delivers.
type Envelope struct {
	Version    string         `json:"version"`
	ID         string         `json:"id"`
	DetailType string         `json:"detail-type"`
	Source     string         `json:"source"`
	Account    string         `json:"account"`
	Time       string         `json:"time"`
	Region     string         `json:"region"`
	Resources  []string       `json:"resources"`
	Detail     map[string]any `json:"detail"`
}

// Envelope returns e as this server (region, account) sends it.
func (e *StreamEvent) Envelope(region, account string) *Envelope {
	detail := e.Detail
	if detail == nil {
		detail = map[string]any{}
	}
	return &Envelope{
		Version:    "0",
		ID:         e.ID,
		DetailType: e.DetailType,
		Source:     "aws.ivs",
		Account:    account,
		Time:       e.Time.UTC().Format("2006-01-02T15:04:05Z"),
		Region:     region,
		Resources:  e.resources(),
		Detail:     detail,
	}
}

// resources are the ARNs the event is about: its stage's, or, for a
// composition's state change, the composition's, as IVS names them.
func (e *StreamEvent) resources() []string {
	if e.DetailType == DetailTypeCompositionStateChange {
		if arn, ok := e.Detail["composition_arn"].(string); ok && arn != "" {
			return []string{arn}
		}
	}
	return []string{string(e.StageARN)}
}

// EventStream reads the log of stream events.
type EventStream interface {
	// ReadEvents returns up to limit events with a Seq above afterSeq, in
	// Seq order. Once an event is visible to a reader, no event with a
	// lower Seq appears later. Returns EINVALID if limit is below 1.
	ReadEvents(ctx context.Context, afterSeq int64, limit int) ([]*StreamEvent, error)

	// LastEventSeq returns the Seq of the newest event, or 0 if there is none.
	LastEventSeq(ctx context.Context) (int64, error)
}
