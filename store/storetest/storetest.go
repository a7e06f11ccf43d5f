// Package storetest is the conformance suite of ivsrt.Store. Every backend
// runs it from its own tests:
//
//	func TestStore(t *testing.T) {
//		storetest.Run(t, func(t *testing.T, now func() time.Time) ivsrt.Store {
//			db := openFreshDatabase(t) // empty, and closed by t.Cleanup
//			db.Now = now
//			return db
//		})
//	}
//
// The suite controls time through now: a store reads the current time only
// through it, and returns every time at millisecond precision, in UTC.
// Tests run in parallel, each on stores of its own, so open must be safe to
// call from parallel tests.
package storetest

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
)

// OpenFunc returns a fresh, empty store that takes the current time from
// now, and registers its cleanup with t. The suite may call it many times.
type OpenFunc func(t *testing.T, now func() time.Time) ivsrt.Store

// Clock is a time source that tests move by hand. It is safe for concurrent
// use; pass its Now method where a store wants a clock.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock stopped at now.
func NewClock(now time.Time) *Clock { return &Clock{now: now} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Set moves the clock to now.
func (c *Clock) Set(now time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = now
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Run runs the conformance suite against the stores open returns.
func Run(t *testing.T, open OpenFunc) {
	tests := []struct {
		name string
		fn   func(*testing.T, OpenFunc)
	}{
		{"CreateStage", testCreateStage},
		{"CreateStageAllOrNothing", testCreateStageAllOrNothing},
		{"StageQuota", testStageQuota},
		{"NotFound", testNotFound},
		{"UpdateStage", testUpdateStage},
		{"DeleteStage", testDeleteStage},
		{"ListStages", testListStages},
		{"ListStagesChangedBetweenPages", testListStagesChangedBetweenPages},
		{"Tags", testTags},
		{"StorageConfiguration", testStorageConfiguration},
		{"ListStorageConfigurations", testListStorageConfigurations},
		{"StorageConfigurationTags", testStorageConfigurationTags},
		{"StorageConfigurationInUse", testStorageConfigurationInUse},
		{"StageNamesMissingStorage", testStageNamesMissingStorage},
		{"StorageDeleteRace", testStorageDeleteRace},
		{"PublicKey", testPublicKey},
		{"ListPublicKeys", testListPublicKeys},
		{"PublicKeyTags", testPublicKeyTags},
		{"PublicKeyQuota", testPublicKeyQuota},
		{"PublicKeyImportRace", testPublicKeyImportRace},
		{"IngestConfiguration", testIngestConfiguration},
		{"ListIngestConfigurations", testListIngestConfigurations},
		{"UpdateIngestConfiguration", testUpdateIngestConfiguration},
		{"IngestActive", testIngestActive},
		{"DetachIngest", testDetachIngest},
		{"IngestActiveRace", testIngestActiveRace},
		{"ParticipantIngest", testParticipantIngest},
		{"EncoderConfiguration", testEncoderConfiguration},
		{"ListEncoderConfigurations", testListEncoderConfigurations},
		{"EncoderConfigurationTags", testEncoderConfigurationTags},
		{"Composition", testComposition},
		{"ListCompositions", testListCompositions},
		{"UpdateComposition", testUpdateComposition},
		{"CompositionTags", testCompositionTags},
		{"ConfigurationsInUseByComposition", testConfigurationsInUseByComposition},
		{"CompositionDeleteRace", testCompositionDeleteRace},
		{"SelfSignedToken", testSelfSignedToken},
		{"TokenExchange", testTokenExchange},
		{"ParticipantToken", testParticipantToken},
		{"RevokeParticipantToken", testRevokeParticipantToken},
		{"SessionLifecycle", testSessionLifecycle},
		{"Rejoin", testRejoin},
		{"JoinClient", testJoinClient},
		{"EventConflict", testEventConflict},
		{"JoinError", testJoinError},
		{"ConcurrentJoins", testConcurrentJoins},
		{"ListParticipants", testListParticipants},
		{"ParticipantRecording", testParticipantRecording},
		{"Replication", testReplication},
		{"ReplicationRefusals", testReplicationRefusals},
		{"ReplicationQuotaRace", testReplicationQuotaRace},
		{"ListParticipantEvents", testListParticipantEvents},
		{"ListStageSessions", testListStageSessions},
		{"StageIsolation", testStageIsolation},
		{"MalformedPage", testMalformedPage},
		{"Outbox", testOutbox},
		{"Delivery", testDelivery},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, open)
		})
	}
}

// epoch is where every test's clock starts: not UTC and not on a
// millisecond, so that stores must normalize what they keep.
var epoch = time.Date(2025, time.March, 14, 15, 9, 26, 535897932, time.FixedZone("UTC+1", 3600))

var sessionIDPattern = regexp.MustCompile(`^st-[a-zA-Z0-9]{13}$`)

// env is one test's store and clock.
type env struct {
	ctx   context.Context
	s     ivsrt.Store
	clock *Clock
}

func newEnv(t *testing.T, open OpenFunc) *env {
	t.Helper()
	clock := NewClock(epoch)
	return &env{ctx: t.Context(), s: open(t, clock.Now), clock: clock}
}

func newARN() ivsrt.StageARN {
	return ivsrt.NewStageARN("us-east-1", "123456789012", ivsrt.NewStageID())
}

func newToken(arn ivsrt.StageARN, now time.Time) *ivsrt.ParticipantToken {
	return &ivsrt.ParticipantToken{
		ParticipantID:   ivsrt.NewParticipantID(),
		StageARN:        arn,
		UserID:          "user-1",
		Attributes:      map[string]string{"displayName": "Guest"},
		Capabilities:    []ivsrt.Capability{ivsrt.CapabilityPublish, ivsrt.CapabilitySubscribe},
		DurationMinutes: ivsrt.DefaultTokenDurationMinutes,
		CreatedAt:       now,
		ExpirationTime:  now.Add(ivsrt.DefaultTokenDurationMinutes * time.Minute),
	}
}

// The storage configurations the recordings below name. A stage may only
// name one that exists: tests create them with addRecordingStorage.
const (
	fullStorageARN      = "arn:aws:ivs:us-east-1:123456789012:storage-configuration/AbCdEf123456"
	minimalStorageARN   = "arn:aws:ivs:us-east-1:123456789012:storage-configuration/Zz9876543210"
	thumbnailStorageARN = "arn:aws:ivs:us-east-1:123456789012:storage-configuration/Thumb0000000"
)

// addRecordingStorage creates the storage configurations the recordings
// below name.
func (e *env) addRecordingStorage(t *testing.T) {
	t.Helper()
	for _, arn := range []string{fullStorageARN, minimalStorageARN, thumbnailStorageARN} {
		sc := &ivsrt.StorageConfiguration{ARN: ivsrt.StorageConfigurationARN(arn), S3BucketName: "recordings"}
		if err := e.s.CreateStorageConfiguration(e.ctx, sc); err != nil {
			t.Fatalf("CreateStorageConfiguration %s: %v", arn, err)
		}
	}
}

func fullRecording() *ivsrt.AutoParticipantRecording {
	return &ivsrt.AutoParticipantRecording{
		StorageConfigurationARN: fullStorageARN,
		MediaTypes:              []string{"AUDIO_VIDEO"},
		Thumbnail: &ivsrt.ThumbnailConfiguration{
			TargetIntervalSeconds: 60,
			Storage:               []string{"SEQUENTIAL", "LATEST"},
			RecordingMode:         "INTERVAL",
		},
		RecordingReconnectWindowSeconds: 30,
		HLSTargetSegmentDurationSeconds: 6,
		RecordParticipantReplicas:       true,
	}
}

func minimalRecording() *ivsrt.AutoParticipantRecording {
	return &ivsrt.AutoParticipantRecording{
		StorageConfigurationARN: minimalStorageARN,
		MediaTypes:              []string{"AUDIO_ONLY"},
	}
}

func thumbnailDisabledRecording() *ivsrt.AutoParticipantRecording {
	return &ivsrt.AutoParticipantRecording{
		StorageConfigurationARN: thumbnailStorageARN,
		MediaTypes:              []string{"NONE"},
		Thumbnail:               &ivsrt.ThumbnailConfiguration{RecordingMode: "DISABLED"},
	}
}

func ptr[T any](v T) *T { return &v }

// createStage stores a stage with the given name and tags and no tokens.
func (e *env) createStage(t *testing.T, name string, tags map[string]string) *ivsrt.Stage {
	t.Helper()
	st := &ivsrt.Stage{ARN: newARN(), Name: name, Tags: tags}
	if err := e.s.CreateStage(e.ctx, st, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	return st
}

func (e *env) createToken(t *testing.T, arn ivsrt.StageARN) *ivsrt.ParticipantToken {
	t.Helper()
	tok := newToken(arn, e.clock.Now())
	if err := e.s.CreateParticipantToken(e.ctx, tok); err != nil {
		t.Fatalf("CreateParticipantToken: %v", err)
	}
	return tok
}

// record stores an event that must succeed.
func (e *env) record(t *testing.T, ev *ivsrt.Event) *ivsrt.Event {
	t.Helper()
	if err := e.s.RecordEvent(e.ctx, ev); err != nil {
		t.Fatalf("RecordEvent %s of %s: %v", ev.Name, ev.ParticipantID, err)
	}
	return ev
}

// join records a JOINED event one second after the previous step.
func (e *env) join(t *testing.T, arn ivsrt.StageARN, id ivsrt.ParticipantID, userID string) *ivsrt.Event {
	t.Helper()
	return e.record(t, &ivsrt.Event{
		StageARN:      arn,
		Name:          ivsrt.EventJoined,
		ParticipantID: id,
		Time:          e.clock.Advance(time.Second),
		UserID:        userID,
		Attributes:    map[string]string{"userId": userID},
	})
}

// event records an event other than JOINED one second after the previous step.
func (e *env) event(t *testing.T, arn ivsrt.StageARN, name ivsrt.EventName, id ivsrt.ParticipantID) *ivsrt.Event {
	t.Helper()
	return e.record(t, &ivsrt.Event{StageARN: arn, Name: name, ParticipantID: id, Time: e.clock.Advance(time.Second)})
}

// fetch is what get, the Get operation op, returns of key, failing the
// test on an error.
func fetch[K, T any](t *testing.T, e *env, op string, get func(context.Context, K) (T, error), key K) T {
	t.Helper()
	x, err := get(e.ctx, key)
	if err != nil {
		t.Fatalf("%s: %v", op, err)
	}
	return x
}

func (e *env) getStage(t *testing.T, arn ivsrt.StageARN) *ivsrt.Stage {
	t.Helper()
	return fetch(t, e, "GetStage", e.s.GetStage, arn)
}

func (e *env) getSession(t *testing.T, arn ivsrt.StageARN, id ivsrt.SessionID) *ivsrt.StageSession {
	t.Helper()
	s, err := e.s.GetStageSession(e.ctx, arn, id)
	if err != nil {
		t.Fatalf("GetStageSession: %v", err)
	}
	return s
}

func (e *env) getParticipant(t *testing.T, arn ivsrt.StageARN, session ivsrt.SessionID, id ivsrt.ParticipantID) *ivsrt.Participant {
	t.Helper()
	p, err := e.s.GetParticipant(e.ctx, arn, session, id)
	if err != nil {
		t.Fatalf("GetParticipant %s: %v", id, err)
	}
	return p
}

func (e *env) listTags(t *testing.T, arn ivsrt.StageARN) map[string]string {
	t.Helper()
	tags, err := e.s.ListTags(e.ctx, string(arn))
	if err != nil {
		t.Fatalf("ListTags: %v", err)
	}
	return tags
}

func (e *env) allSessions(t *testing.T, arn ivsrt.StageARN) []*ivsrt.StageSession {
	t.Helper()
	return flatten(paginate(t, ivsrt.MaxPageSize, func(p ivsrt.Page) ([]*ivsrt.StageSession, string, error) {
		return e.s.ListStageSessions(e.ctx, arn, p)
	}))
}

func (e *env) allParticipants(t *testing.T, arn ivsrt.StageARN, session ivsrt.SessionID) []*ivsrt.Participant {
	t.Helper()
	return flatten(paginate(t, ivsrt.MaxPageSize, func(p ivsrt.Page) ([]*ivsrt.Participant, string, error) {
		return e.s.ListParticipants(e.ctx, arn, session, ivsrt.ParticipantFilter{}, p)
	}))
}

func (e *env) allEvents(t *testing.T, arn ivsrt.StageARN, session ivsrt.SessionID, id ivsrt.ParticipantID) []*ivsrt.Event {
	t.Helper()
	return flatten(paginate(t, ivsrt.MaxPageSize, func(p ivsrt.Page) ([]*ivsrt.Event, string, error) {
		return e.s.ListParticipantEvents(e.ctx, arn, session, id, p)
	}))
}

// paginate follows a list from its first page to its last.
func paginate[T any](t *testing.T, limit int, list func(ivsrt.Page) ([]T, string, error)) [][]T {
	t.Helper()
	var pages [][]T
	after := ""
	for {
		items, next, err := list(ivsrt.Page{After: after, Limit: limit})
		if err != nil {
			t.Fatalf("page %d (limit %d): %v", len(pages)+1, limit, err)
		}
		if len(items) > limit {
			t.Errorf("page %d: got %d items, want at most %d", len(pages)+1, len(items), limit)
		}
		pages = append(pages, items)
		if next == "" {
			return pages
		}
		if next == after || len(pages) > 1000 {
			t.Fatalf("page %d: pagination does not advance (next %q)", len(pages), next)
		}
		after = next
	}
}

func flatten[T any](pages [][]T) []T {
	var all []T
	for _, p := range pages {
		all = append(all, p...)
	}
	return all
}

func sizes[T any](pages [][]T) []int {
	n := make([]int, len(pages))
	for i, p := range pages {
		n[i] = len(p)
	}
	return n
}

func stageARNs(stages []*ivsrt.Stage) []ivsrt.StageARN {
	arns := make([]ivsrt.StageARN, len(stages))
	for i, s := range stages {
		arns[i] = s.ARN
	}
	return arns
}

func sessionIDs(sessions []*ivsrt.StageSession) []ivsrt.SessionID {
	ids := make([]ivsrt.SessionID, len(sessions))
	for i, s := range sessions {
		ids[i] = s.ID
	}
	return ids
}

func participantIDs(ps []*ivsrt.Participant) []ivsrt.ParticipantID {
	ids := make([]ivsrt.ParticipantID, len(ps))
	for i, p := range ps {
		ids[i] = p.ID
	}
	return ids
}

func eventNames(evs []*ivsrt.Event) []ivsrt.EventName {
	names := make([]ivsrt.EventName, len(evs))
	for i, ev := range evs {
		names[i] = ev.Name
	}
	return names
}

// ms is t as a store returns it: at millisecond precision, in UTC.
func ms(t time.Time) time.Time { return t.Truncate(time.Millisecond).UTC() }

func wantCode(t *testing.T, what string, err error, code string) {
	t.Helper()
	if got := ivsrt.ErrorCode(err); got != code {
		t.Errorf("%s: error code: got %q, want %q (error: %v)", what, got, code, err)
	}
}

func checkTime(t *testing.T, what string, got, want time.Time) {
	t.Helper()
	want = ms(want)
	if !got.Equal(want) || got.Location() != time.UTC {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func checkTags(t *testing.T, what string, got, want map[string]string) {
	t.Helper()
	if !maps.Equal(got, want) {
		t.Errorf("%s: got %v, want %v", what, got, want)
	}
}

func recordingEqual(a, b *ivsrt.AutoParticipantRecording) bool {
	if a == nil || b == nil {
		return a == b
	}
	if (a.Thumbnail == nil) != (b.Thumbnail == nil) {
		return false
	}
	if a.Thumbnail != nil && (a.Thumbnail.TargetIntervalSeconds != b.Thumbnail.TargetIntervalSeconds ||
		!slices.Equal(a.Thumbnail.Storage, b.Thumbnail.Storage) ||
		a.Thumbnail.RecordingMode != b.Thumbnail.RecordingMode) {
		return false
	}
	return a.StorageConfigurationARN == b.StorageConfigurationARN &&
		slices.Equal(a.MediaTypes, b.MediaTypes) &&
		a.RecordingReconnectWindowSeconds == b.RecordingReconnectWindowSeconds &&
		a.HLSTargetSegmentDurationSeconds == b.HLSTargetSegmentDurationSeconds &&
		a.RecordParticipantReplicas == b.RecordParticipantReplicas
}

func formatRecording(r *ivsrt.AutoParticipantRecording) string {
	if r == nil {
		return "<nil>"
	}
	if r.Thumbnail == nil {
		return fmt.Sprintf("%+v", *r)
	}
	return fmt.Sprintf("%+v thumbnail %+v", *r, *r.Thumbnail)
}

func checkRecording(t *testing.T, what string, got, want *ivsrt.AutoParticipantRecording) {
	t.Helper()
	if !recordingEqual(got, want) {
		t.Errorf("%s: recording: got %s, want %s", what, formatRecording(got), formatRecording(want))
	}
}

func checkStage(t *testing.T, what string, got, want *ivsrt.Stage) {
	t.Helper()
	if got.ARN != want.ARN {
		t.Errorf("%s: ARN: got %v, want %v", what, got.ARN, want.ARN)
	}
	if got.Name != want.Name {
		t.Errorf("%s: Name: got %q, want %q", what, got.Name, want.Name)
	}
	if got.ActiveSessionID != want.ActiveSessionID {
		t.Errorf("%s: ActiveSessionID: got %q, want %q", what, got.ActiveSessionID, want.ActiveSessionID)
	}
	checkTags(t, what+": Tags", got.Tags, want.Tags)
	checkRecording(t, what, got.AutoParticipantRecording, want.AutoParticipantRecording)
	checkTime(t, what+": CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, what+": UpdatedAt", got.UpdatedAt, want.UpdatedAt)
}

func checkToken(t *testing.T, what string, got, want *ivsrt.ParticipantToken) {
	t.Helper()
	if got.ParticipantID != want.ParticipantID {
		t.Errorf("%s: ParticipantID: got %v, want %v", what, got.ParticipantID, want.ParticipantID)
	}
	if got.StageARN != want.StageARN {
		t.Errorf("%s: StageARN: got %v, want %v", what, got.StageARN, want.StageARN)
	}
	if got.UserID != want.UserID {
		t.Errorf("%s: UserID: got %q, want %q", what, got.UserID, want.UserID)
	}
	checkTags(t, what+": Attributes", got.Attributes, want.Attributes)
	if !slices.Equal(got.Capabilities, want.Capabilities) {
		t.Errorf("%s: Capabilities: got %v, want %v", what, got.Capabilities, want.Capabilities)
	}
	if got.DurationMinutes != want.DurationMinutes {
		t.Errorf("%s: DurationMinutes: got %v, want %v", what, got.DurationMinutes, want.DurationMinutes)
	}
	checkTime(t, what+": CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, what+": ExpirationTime", got.ExpirationTime, want.ExpirationTime)
	checkTime(t, what+": RevokedAt", got.RevokedAt, want.RevokedAt)
	checkTime(t, what+": NotBefore", got.NotBefore, want.NotBefore)
	if got.RevokeReason != want.RevokeReason {
		t.Errorf("%s: RevokeReason: got %q, want %q", what, got.RevokeReason, want.RevokeReason)
	}
	if got.PublicKeyARN != want.PublicKeyARN {
		t.Errorf("%s: PublicKeyARN: got %q, want %q", what, got.PublicKeyARN, want.PublicKeyARN)
	}
	if got.Token != "" {
		t.Errorf("%s: Token: got %q, want it not stored", what, got.Token)
	}
}

func checkParticipant(t *testing.T, what string, got, want *ivsrt.Participant) {
	t.Helper()
	if got.ID != want.ID || got.StageARN != want.StageARN || got.SessionID != want.SessionID {
		t.Errorf("%s: got participant %s of %s in %s, want %s of %s in %s", what,
			got.ID, got.StageARN, got.SessionID, want.ID, want.StageARN, want.SessionID)
	}
	if got.UserID != want.UserID {
		t.Errorf("%s: UserID: got %q, want %q", what, got.UserID, want.UserID)
	}
	checkTags(t, what+": Attributes", got.Attributes, want.Attributes)
	if got.State != want.State {
		t.Errorf("%s: State: got %v, want %v", what, got.State, want.State)
	}
	checkTime(t, what+": FirstJoinTime", got.FirstJoinTime, want.FirstJoinTime)
	if got.Published != want.Published {
		t.Errorf("%s: Published: got %v, want %v", what, got.Published, want.Published)
	}
	if got.Protocol != want.Protocol {
		t.Errorf("%s: Protocol: got %q, want %q", what, got.Protocol, want.Protocol)
	}
	if got.Client != want.Client {
		t.Errorf("%s: Client: got %+v, want %+v", what, got.Client, want.Client)
	}
	if got.IngestConfigurationARN != want.IngestConfigurationARN || got.RedundantIngest != want.RedundantIngest {
		t.Errorf("%s: ingest configuration: got %q, redundant %v, want %q, redundant %v", what,
			got.IngestConfigurationARN, got.RedundantIngest, want.IngestConfigurationARN, want.RedundantIngest)
	}
	checkRecordingState(t, what, got, want.RecordingBucket, want.RecordingPrefix, want.RecordingState)
}

func checkSession(t *testing.T, what string, got, want *ivsrt.StageSession) {
	t.Helper()
	if got.ID != want.ID || got.StageARN != want.StageARN {
		t.Errorf("%s: got session %s of %s, want %s of %s", what, got.ID, got.StageARN, want.ID, want.StageARN)
	}
	checkTime(t, what+": StartTime", got.StartTime, want.StartTime)
	checkTime(t, what+": EndTime", got.EndTime, want.EndTime)
}

func checkEvent(t *testing.T, what string, got, want *ivsrt.Event) {
	t.Helper()
	if got.Name != want.Name || got.ParticipantID != want.ParticipantID {
		t.Errorf("%s: got %s of %s, want %s of %s", what, got.Name, got.ParticipantID, want.Name, want.ParticipantID)
	}
	if got.StageARN != want.StageARN || got.SessionID != want.SessionID {
		t.Errorf("%s: got stage %s session %s, want stage %s session %s", what, got.StageARN, got.SessionID, want.StageARN, want.SessionID)
	}
	if got.RemoteParticipantID != want.RemoteParticipantID {
		t.Errorf("%s: RemoteParticipantID: got %q, want %q", what, got.RemoteParticipantID, want.RemoteParticipantID)
	}
	if got.ErrorCode != want.ErrorCode {
		t.Errorf("%s: ErrorCode: got %q, want %q", what, got.ErrorCode, want.ErrorCode)
	}
	checkTime(t, what+": Time", got.Time, want.Time)
}

func testCreateStage(t *testing.T, open OpenFunc) {
	tests := []struct {
		name      string
		stageName string
		tags      map[string]string
		recording *ivsrt.AutoParticipantRecording
		tokens    int
	}{
		{name: "bare"},
		{name: "name tags and recording", stageName: "studio-1_a", tags: map[string]string{"team": "video", "env": ""}, recording: fullRecording(), tokens: 1},
		{name: "most tokens", stageName: "town-hall", tags: map[string]string{"k": "v"}, tokens: ivsrt.MaxTokenConfigurations},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, open)
			e.addRecordingStorage(t)
			now := e.clock.Now()
			st := &ivsrt.Stage{ARN: newARN(), Name: tt.stageName, Tags: tt.tags, AutoParticipantRecording: tt.recording}
			var toks []*ivsrt.ParticipantToken
			for i := range tt.tokens {
				tok := newToken(st.ARN, now)
				tok.UserID = fmt.Sprintf("user-%d", i)
				toks = append(toks, tok)
			}
			if err := e.s.CreateStage(e.ctx, st, toks, ivsrt.StageQuota{MaxStages: 10}); err != nil {
				t.Fatalf("CreateStage: %v", err)
			}
			want := &ivsrt.Stage{ARN: st.ARN, Name: tt.stageName, Tags: tt.tags, AutoParticipantRecording: tt.recording, CreatedAt: now, UpdatedAt: now}
			checkStage(t, "GetStage", e.getStage(t, st.ARN), want)
			checkTags(t, "ListTags", e.listTags(t, st.ARN), tt.tags)
			for _, tok := range toks {
				got, err := e.s.GetParticipantToken(e.ctx, tok.ParticipantID)
				if err != nil {
					t.Fatalf("GetParticipantToken: %v", err)
				}
				checkToken(t, "GetParticipantToken", got, tok)
			}
			if sessions := e.allSessions(t, st.ARN); len(sessions) != 0 {
				t.Errorf("ListStageSessions of a new stage: got %d sessions, want 0", len(sessions))
			}
		})
	}
}

func testCreateStageAllOrNothing(t *testing.T, open OpenFunc) {
	tests := []struct {
		name string
		// attempt returns the stage and tokens to create; check looks at
		// what is left after CreateStage failed with ECONFLICT.
		attempt func(t *testing.T, e *env) (*ivsrt.Stage, []*ivsrt.ParticipantToken)
		check   func(t *testing.T, e *env, st *ivsrt.Stage, toks []*ivsrt.ParticipantToken)
	}{
		{
			name: "duplicate participant id in the tokens",
			attempt: func(t *testing.T, e *env) (*ivsrt.Stage, []*ivsrt.ParticipantToken) {
				st := &ivsrt.Stage{ARN: newARN(), Name: "dup-token", Tags: map[string]string{"a": "1"}}
				first := newToken(st.ARN, e.clock.Now())
				second := newToken(st.ARN, e.clock.Now())
				second.ParticipantID = first.ParticipantID
				return st, []*ivsrt.ParticipantToken{first, second}
			},
			check: func(t *testing.T, e *env, st *ivsrt.Stage, toks []*ivsrt.ParticipantToken) {
				_, err := e.s.GetStage(e.ctx, st.ARN)
				wantCode(t, "GetStage", err, ivsrt.ENOTFOUND)
				_, err = e.s.ListTags(e.ctx, string(st.ARN))
				wantCode(t, "ListTags", err, ivsrt.ENOTFOUND)
				_, err = e.s.GetParticipantToken(e.ctx, toks[0].ParticipantID)
				wantCode(t, "GetParticipantToken", err, ivsrt.ENOTFOUND)
			},
		},
		{
			name: "participant id of another stage's token",
			attempt: func(t *testing.T, e *env) (*ivsrt.Stage, []*ivsrt.ParticipantToken) {
				other := e.createStage(t, "other", nil)
				taken := e.createToken(t, other.ARN)
				st := &ivsrt.Stage{ARN: newARN(), Name: "steals-id"}
				fresh := newToken(st.ARN, e.clock.Now())
				clash := newToken(st.ARN, e.clock.Now())
				clash.ParticipantID = taken.ParticipantID
				return st, []*ivsrt.ParticipantToken{fresh, clash}
			},
			check: func(t *testing.T, e *env, st *ivsrt.Stage, toks []*ivsrt.ParticipantToken) {
				_, err := e.s.GetStage(e.ctx, st.ARN)
				wantCode(t, "GetStage", err, ivsrt.ENOTFOUND)
				_, err = e.s.GetParticipantToken(e.ctx, toks[0].ParticipantID)
				wantCode(t, "GetParticipantToken of the fresh token", err, ivsrt.ENOTFOUND)
				kept, err := e.s.GetParticipantToken(e.ctx, toks[1].ParticipantID)
				if err != nil {
					t.Fatalf("GetParticipantToken of the taken id: %v", err)
				}
				if kept.StageARN == st.ARN {
					t.Errorf("taken token: StageARN: got %v, want the other stage's", kept.StageARN)
				}
			},
		},
		{
			name: "duplicate ARN",
			attempt: func(t *testing.T, e *env) (*ivsrt.Stage, []*ivsrt.ParticipantToken) {
				existing := e.createStage(t, "first", map[string]string{"a": "1"})
				st := &ivsrt.Stage{ARN: existing.ARN, Name: "second", Tags: map[string]string{"b": "2"}, AutoParticipantRecording: fullRecording()}
				return st, []*ivsrt.ParticipantToken{newToken(st.ARN, e.clock.Now())}
			},
			check: func(t *testing.T, e *env, st *ivsrt.Stage, toks []*ivsrt.ParticipantToken) {
				want := &ivsrt.Stage{ARN: st.ARN, Name: "first", Tags: map[string]string{"a": "1"}, CreatedAt: epoch, UpdatedAt: epoch}
				checkStage(t, "GetStage", e.getStage(t, st.ARN), want)
				_, err := e.s.GetParticipantToken(e.ctx, toks[0].ParticipantID)
				wantCode(t, "GetParticipantToken", err, ivsrt.ENOTFOUND)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, open)
			e.addRecordingStorage(t)
			st, toks := tt.attempt(t, e)
			e.clock.Advance(time.Second)
			err := e.s.CreateStage(e.ctx, st, toks, ivsrt.StageQuota{})
			wantCode(t, "CreateStage", err, ivsrt.ECONFLICT)
			tt.check(t, e, st, toks)
		})
	}
}

func testStageQuota(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	quota := ivsrt.StageQuota{MaxStages: 2}
	var arns []ivsrt.StageARN
	for range 2 {
		st := &ivsrt.Stage{ARN: newARN()}
		if err := e.s.CreateStage(e.ctx, st, nil, quota); err != nil {
			t.Fatalf("CreateStage within quota: %v", err)
		}
		arns = append(arns, st.ARN)
	}

	over := &ivsrt.Stage{ARN: newARN(), Name: "over", Tags: map[string]string{"a": "1"}}
	tok := newToken(over.ARN, e.clock.Now())
	err := e.s.CreateStage(e.ctx, over, []*ivsrt.ParticipantToken{tok}, quota)
	wantCode(t, "CreateStage over quota", err, ivsrt.EQUOTA)
	_, err = e.s.GetStage(e.ctx, over.ARN)
	wantCode(t, "GetStage of the refused stage", err, ivsrt.ENOTFOUND)
	_, err = e.s.ListTags(e.ctx, string(over.ARN))
	wantCode(t, "ListTags of the refused stage", err, ivsrt.ENOTFOUND)
	_, err = e.s.GetParticipantToken(e.ctx, tok.ParticipantID)
	wantCode(t, "GetParticipantToken of the refused stage", err, ivsrt.ENOTFOUND)
	stages, next, err := e.s.ListStages(e.ctx, ivsrt.Page{Limit: 10})
	if err != nil {
		t.Fatalf("ListStages: %v", err)
	}
	if got := stageARNs(stages); !slices.Equal(got, arns) || next != "" {
		t.Errorf("ListStages: got %v next %q, want %v next \"\"", got, next, arns)
	}

	if err := e.s.DeleteStage(e.ctx, arns[0]); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	if err := e.s.CreateStage(e.ctx, over, []*ivsrt.ParticipantToken{tok}, quota); err != nil {
		t.Errorf("CreateStage after a delete freed the quota: got %v, want nil", err)
	}
	err = e.s.CreateStage(e.ctx, &ivsrt.Stage{ARN: newARN()}, nil, quota)
	wantCode(t, "CreateStage over quota again", err, ivsrt.EQUOTA)
	if err := e.s.CreateStage(e.ctx, &ivsrt.Stage{ARN: newARN()}, nil, ivsrt.StageQuota{}); err != nil {
		t.Errorf("CreateStage with no quota: got %v, want nil", err)
	}
}

func testNotFound(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	st := e.createStage(t, "known", nil)
	tok := e.createToken(t, st.ARN)
	session := e.join(t, st.ARN, tok.ParticipantID, "u").SessionID
	missing := newARN()
	missingStorage := newStorageARN()

	tests := []struct {
		name string
		call func() error
	}{
		{"GetStage", func() error { _, err := e.s.GetStage(e.ctx, missing); return err }},
		{"UpdateStage", func() error {
			_, err := e.s.UpdateStage(e.ctx, missing, ivsrt.StageUpdate{Name: ptr("x"), AutoParticipantRecording: fullRecording()})
			return err
		}},
		{"DeleteStage", func() error { return e.s.DeleteStage(e.ctx, missing) }},
		{"TagResource", func() error { return e.s.TagResource(e.ctx, string(missing), map[string]string{"a": "1"}) }},
		{"TagResource of another kind of resource", func() error {
			return e.s.TagResource(e.ctx, "arn:aws:ivs:us-east-1:123456789012:channel/"+st.ARN.ID(), map[string]string{"a": "1"})
		}},
		{"UntagResource", func() error { return e.s.UntagResource(e.ctx, string(missing), []string{"a"}) }},
		{"ListTags", func() error { _, err := e.s.ListTags(e.ctx, string(missing)); return err }},
		{"GetStorageConfiguration", func() error { _, err := e.s.GetStorageConfiguration(e.ctx, missingStorage); return err }},
		{"DeleteStorageConfiguration", func() error { return e.s.DeleteStorageConfiguration(e.ctx, missingStorage) }},
		{"TagResource of a storage configuration", func() error {
			return e.s.TagResource(e.ctx, string(missingStorage), map[string]string{"a": "1"})
		}},
		{"UntagResource of a storage configuration", func() error {
			return e.s.UntagResource(e.ctx, string(missingStorage), []string{"a"})
		}},
		{"ListTags of a storage configuration", func() error { _, err := e.s.ListTags(e.ctx, string(missingStorage)); return err }},
		{"ListTags of a storage configuration with a stage's id", func() error {
			_, err := e.s.ListTags(e.ctx, string(ivsrt.NewStorageConfigurationARN("us-east-1", "123456789012", st.ARN.ID())))
			return err
		}},
		{"CreateParticipantToken", func() error { return e.s.CreateParticipantToken(e.ctx, newToken(missing, epoch)) }},
		{"GetParticipantToken", func() error { _, err := e.s.GetParticipantToken(e.ctx, ivsrt.NewParticipantID()); return err }},
		{"RevokeParticipantToken of an unknown stage", func() error {
			return e.s.RevokeParticipantToken(e.ctx, missing, tok.ParticipantID, "")
		}},
		{"RevokeParticipantToken of an unknown participant", func() error {
			return e.s.RevokeParticipantToken(e.ctx, st.ARN, ivsrt.NewParticipantID(), "")
		}},
		{"RecordEvent JOINED", func() error {
			return e.s.RecordEvent(e.ctx, &ivsrt.Event{StageARN: missing, Name: ivsrt.EventJoined, ParticipantID: ivsrt.NewParticipantID(), Time: epoch})
		}},
		{"RecordEvent LEFT", func() error {
			return e.s.RecordEvent(e.ctx, &ivsrt.Event{StageARN: missing, Name: ivsrt.EventLeft, ParticipantID: tok.ParticipantID, Time: epoch})
		}},
		{"GetStageSession of an unknown session", func() error {
			_, err := e.s.GetStageSession(e.ctx, st.ARN, ivsrt.NewSessionID())
			return err
		}},
		{"GetStageSession of an unknown stage", func() error { _, err := e.s.GetStageSession(e.ctx, missing, session); return err }},
		{"GetParticipant of an unknown participant", func() error {
			_, err := e.s.GetParticipant(e.ctx, st.ARN, session, ivsrt.NewParticipantID())
			return err
		}},
		{"GetParticipant of an unknown session", func() error {
			_, err := e.s.GetParticipant(e.ctx, st.ARN, ivsrt.NewSessionID(), tok.ParticipantID)
			return err
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wantCode(t, tt.name, tt.call(), ivsrt.ENOTFOUND)
		})
	}
	if _, err := e.s.GetStage(e.ctx, missing); ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
		t.Errorf("GetStage after the calls above: got %v, want ENOTFOUND (nothing created)", err)
	}
}

func testUpdateStage(t *testing.T, open OpenFunc) {
	tests := []struct {
		name     string
		initial  *ivsrt.AutoParticipantRecording
		upd      ivsrt.StageUpdate
		wantName string
		wantRec  *ivsrt.AutoParticipantRecording
	}{
		{"nothing", fullRecording(), ivsrt.StageUpdate{}, "orig", fullRecording()},
		{"name only", fullRecording(), ivsrt.StageUpdate{Name: ptr("renamed-1")}, "renamed-1", fullRecording()},
		{"name to empty", nil, ivsrt.StageUpdate{Name: ptr("")}, "", nil},
		{"recording added", nil, ivsrt.StageUpdate{AutoParticipantRecording: fullRecording()}, "orig", fullRecording()},
		{"recording replaced", fullRecording(), ivsrt.StageUpdate{AutoParticipantRecording: minimalRecording()}, "orig", minimalRecording()},
		{"thumbnail disabled", fullRecording(), ivsrt.StageUpdate{AutoParticipantRecording: thumbnailDisabledRecording()}, "orig", thumbnailDisabledRecording()},
		{"name and recording", minimalRecording(), ivsrt.StageUpdate{Name: ptr("both"), AutoParticipantRecording: fullRecording()}, "both", fullRecording()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, open)
			e.addRecordingStorage(t)
			created := e.clock.Now()
			st := &ivsrt.Stage{ARN: newARN(), Name: "orig", Tags: map[string]string{"k": "v"}, AutoParticipantRecording: tt.initial}
			if err := e.s.CreateStage(e.ctx, st, nil, ivsrt.StageQuota{}); err != nil {
				t.Fatalf("CreateStage: %v", err)
			}
			updated := e.clock.Advance(90*time.Second + 1234567*time.Nanosecond)
			got, err := e.s.UpdateStage(e.ctx, st.ARN, tt.upd)
			if err != nil {
				t.Fatalf("UpdateStage: %v", err)
			}
			want := &ivsrt.Stage{ARN: st.ARN, Name: tt.wantName, Tags: st.Tags, AutoParticipantRecording: tt.wantRec, CreatedAt: created, UpdatedAt: updated}
			checkStage(t, "UpdateStage", got, want)
			checkStage(t, "GetStage", e.getStage(t, st.ARN), want)
		})
	}

	t.Run("keeps the active session", func(t *testing.T) {
		e := newEnv(t, open)
		st := e.createStage(t, "live", nil)
		session := e.join(t, st.ARN, ivsrt.NewParticipantID(), "u").SessionID
		got, err := e.s.UpdateStage(e.ctx, st.ARN, ivsrt.StageUpdate{Name: ptr("still-live")})
		if err != nil {
			t.Fatalf("UpdateStage: %v", err)
		}
		if got.ActiveSessionID != session {
			t.Errorf("UpdateStage: ActiveSessionID: got %q, want %q", got.ActiveSessionID, session)
		}
		if got := e.getStage(t, st.ARN).ActiveSessionID; got != session {
			t.Errorf("GetStage: ActiveSessionID: got %q, want %q", got, session)
		}
	})
}

func testDeleteStage(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	e.addRecordingStorage(t)
	st := &ivsrt.Stage{ARN: newARN(), Name: "doomed", Tags: map[string]string{"a": "1", "b": "2"}, AutoParticipantRecording: fullRecording()}
	tok := newToken(st.ARN, e.clock.Now())
	if err := e.s.CreateStage(e.ctx, st, []*ivsrt.ParticipantToken{tok}, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	revoked := e.createToken(t, st.ARN)
	if err := e.s.RevokeParticipantToken(e.ctx, st.ARN, revoked.ParticipantID, "bye"); err != nil {
		t.Fatalf("RevokeParticipantToken: %v", err)
	}
	// One ended session, one active.
	ended := e.join(t, st.ARN, revoked.ParticipantID, "r").SessionID
	e.event(t, st.ARN, ivsrt.EventLeft, revoked.ParticipantID)
	active := e.join(t, st.ARN, tok.ParticipantID, "u").SessionID
	e.event(t, st.ARN, ivsrt.EventPublishStarted, tok.ParticipantID)

	// A neighbour that must not be touched.
	other := e.createStage(t, "neighbour", map[string]string{"a": "other"})
	otherTok := e.createToken(t, other.ARN)
	otherSession := e.join(t, other.ARN, otherTok.ParticipantID, "o").SessionID

	if err := e.s.DeleteStage(e.ctx, st.ARN); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	wantCode(t, "DeleteStage again", e.s.DeleteStage(e.ctx, st.ARN), ivsrt.ENOTFOUND)
	_, err := e.s.GetStage(e.ctx, st.ARN)
	wantCode(t, "GetStage", err, ivsrt.ENOTFOUND)
	_, err = e.s.ListTags(e.ctx, string(st.ARN))
	wantCode(t, "ListTags", err, ivsrt.ENOTFOUND)
	for _, id := range []ivsrt.ParticipantID{tok.ParticipantID, revoked.ParticipantID} {
		_, err = e.s.GetParticipantToken(e.ctx, id)
		wantCode(t, "GetParticipantToken", err, ivsrt.ENOTFOUND)
	}
	for _, id := range []ivsrt.SessionID{ended, active} {
		_, err = e.s.GetStageSession(e.ctx, st.ARN, id)
		wantCode(t, "GetStageSession", err, ivsrt.ENOTFOUND)
	}
	_, err = e.s.GetParticipant(e.ctx, st.ARN, active, tok.ParticipantID)
	wantCode(t, "GetParticipant", err, ivsrt.ENOTFOUND)
	if got := e.allSessions(t, st.ARN); len(got) != 0 {
		t.Errorf("ListStageSessions: got %v, want none", sessionIDs(got))
	}
	if got := e.allParticipants(t, st.ARN, active); len(got) != 0 {
		t.Errorf("ListParticipants: got %v, want none", participantIDs(got))
	}
	if got := e.allEvents(t, st.ARN, active, tok.ParticipantID); len(got) != 0 {
		t.Errorf("ListParticipantEvents: got %v, want none", eventNames(got))
	}

	checkTags(t, "neighbour ListTags", e.listTags(t, other.ARN), map[string]string{"a": "other"})
	if _, err := e.s.GetParticipantToken(e.ctx, otherTok.ParticipantID); err != nil {
		t.Errorf("neighbour GetParticipantToken: got %v, want nil", err)
	}
	if got := e.getStage(t, other.ARN).ActiveSessionID; got != otherSession {
		t.Errorf("neighbour ActiveSessionID: got %q, want %q", got, otherSession)
	}
	if got := e.allParticipants(t, other.ARN, otherSession); len(got) != 1 {
		t.Errorf("neighbour ListParticipants: got %d, want 1", len(got))
	}

	// A new stage with the same ARN starts clean.
	recreatedAt := e.clock.Advance(time.Minute)
	again := &ivsrt.Stage{ARN: st.ARN, Name: "reborn"}
	if err := e.s.CreateStage(e.ctx, again, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage with the deleted ARN: %v", err)
	}
	checkStage(t, "GetStage of the new stage", e.getStage(t, st.ARN),
		&ivsrt.Stage{ARN: st.ARN, Name: "reborn", CreatedAt: recreatedAt, UpdatedAt: recreatedAt})
	if got := e.allSessions(t, st.ARN); len(got) != 0 {
		t.Errorf("ListStageSessions of the new stage: got %v, want none", sessionIDs(got))
	}
	reused := newToken(st.ARN, e.clock.Now())
	reused.ParticipantID = tok.ParticipantID
	if err := e.s.CreateParticipantToken(e.ctx, reused); err != nil {
		t.Errorf("CreateParticipantToken with a deleted token's id: got %v, want nil", err)
	}
	ev := e.join(t, st.ARN, tok.ParticipantID, "u2")
	if ev.SessionID == active || ev.SessionID == ended {
		t.Errorf("JOINED in the new stage: session %q is one of the deleted stage's", ev.SessionID)
	}
	p := e.getParticipant(t, st.ARN, ev.SessionID, tok.ParticipantID)
	if p.Published || !p.FirstJoinTime.Equal(ms(ev.Time)) {
		t.Errorf("participant of the new stage: got published %v first join %v, want false %v", p.Published, p.FirstJoinTime, ms(ev.Time))
	}
}

// stageListing is how the list tests reach stages.
func (e *env) stageListing() listing[*ivsrt.Stage, ivsrt.StageARN] {
	return listing[*ivsrt.Stage, ivsrt.StageARN]{op: "ListStages", noun: "stage",
		list:  func(p ivsrt.Page) ([]*ivsrt.Stage, string, error) { return e.s.ListStages(e.ctx, p) },
		arn:   func(st *ivsrt.Stage) ivsrt.StageARN { return st.ARN },
		check: checkStage}
}

func testListStages(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	stages := e.stageListing()
	stages.checkEmpty(t)
	e.addRecordingStorage(t)
	var want []*ivsrt.Stage
	for i := range 7 {
		now := e.clock.Advance(time.Second)
		st := &ivsrt.Stage{ARN: newARN(), Name: fmt.Sprintf("stage-%d", i), Tags: map[string]string{"n": fmt.Sprint(i)}, CreatedAt: now, UpdatedAt: now}
		if i%2 == 0 {
			st.AutoParticipantRecording = fullRecording()
		}
		if err := e.s.CreateStage(e.ctx, st, nil, ivsrt.StageQuota{}); err != nil {
			t.Fatalf("CreateStage: %v", err)
		}
		want = append(want, st)
	}
	stages.testPageSizes(t, want)
}

func testListStagesChangedBetweenPages(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	var want []*ivsrt.Stage
	for i := range 7 {
		want = append(want, e.createStage(t, fmt.Sprintf("s%d", i), nil))
	}
	e.stageListing().checkChangedBetweenPages(t, want,
		func(arn ivsrt.StageARN) error { return e.s.DeleteStage(e.ctx, arn) },
		func(t *testing.T) *ivsrt.Stage { return e.createStage(t, "added", nil) })
}

func testTags(t *testing.T, open OpenFunc) {
	tags := manyTags
	with := func(m map[string]string, kv ...string) map[string]string {
		m = maps.Clone(m)
		for i := 0; i < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return m
	}
	tag := func(m map[string]string) func(*env, string) error {
		return func(e *env, arn string) error { return e.s.TagResource(e.ctx, arn, m) }
	}
	untag := func(keys ...string) func(*env, string) error {
		return func(e *env, arn string) error { return e.s.UntagResource(e.ctx, arn, keys) }
	}
	ab := map[string]string{"a": "1", "b": "2"}

	tests := []struct {
		name    string
		initial map[string]string
		op      func(e *env, arn string) error
		code    string
		want    map[string]string
	}{
		{"merge", ab, tag(map[string]string{"c": "3"}), "", with(ab, "c", "3")},
		{"merge into none", nil, tag(map[string]string{"c": "3"}), "", map[string]string{"c": "3"}},
		{"overwrite", ab, tag(map[string]string{"a": "9"}), "", map[string]string{"a": "9", "b": "2"}},
		{"overwrite with empty and add", ab, tag(map[string]string{"b": "", "d": "4"}), "", map[string]string{"a": "1", "b": "", "d": "4"}},
		{"tag nothing", ab, tag(map[string]string{}), "", ab},
		{"untag", ab, untag("a"), "", map[string]string{"b": "2"}},
		{"untag absent keys ignored", ab, untag("zz", "a", "yy"), "", map[string]string{"b": "2"}},
		{"untag only absent keys", ab, untag("zz"), "", ab},
		{"untag all", ab, untag("a", "b"), "", nil},
		{"untag nothing", ab, untag(), "", ab},
		{"up to the limit", tags(48), tag(map[string]string{"x": "1", "y": "2"}), "", with(tags(48), "x", "1", "y", "2")},
		{"overwrite at the limit", tags(50), tag(map[string]string{"k00": "changed"}), "", with(tags(50), "k00", "changed")},
		{"51st tag", tags(50), tag(map[string]string{"new": "x"}), ivsrt.EINVALID, tags(50)},
		{"51st tag with an overwrite", tags(50), tag(map[string]string{"k00": "changed", "new": "x"}), ivsrt.EINVALID, tags(50)},
		{"past the limit from below", tags(49), tag(map[string]string{"x": "1", "y": "2"}), ivsrt.EINVALID, tags(49)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, open)
			st := e.createStage(t, "tagged", tt.initial)
			neighbour := e.createStage(t, "neighbour", map[string]string{"a": "other"})
			wantCode(t, "tag operation", tt.op(e, string(st.ARN)), tt.code)
			checkTags(t, "ListTags", e.listTags(t, st.ARN), tt.want)
			checkTags(t, "GetStage tags", e.getStage(t, st.ARN).Tags, tt.want)
			checkTags(t, "neighbour's tags", e.listTags(t, neighbour.ARN), map[string]string{"a": "other"})
		})
	}
}

func testParticipantToken(t *testing.T, open OpenFunc) {
	created := time.Date(2025, time.June, 1, 12, 0, 0, 123456789, time.FixedZone("UTC-7", -7*3600))
	tests := []struct {
		name string
		tok  ivsrt.ParticipantToken
	}{
		{"full", ivsrt.ParticipantToken{
			UserID:          "alice@example.com",
			Attributes:      map[string]string{"displayName": "Alice", "avatar": "🎥", "empty": ""},
			Capabilities:    []ivsrt.Capability{ivsrt.CapabilityPublish, ivsrt.CapabilitySubscribe},
			DurationMinutes: 720,
			CreatedAt:       created,
			ExpirationTime:  created.Add(720 * time.Minute),
			Token:           "eyJhbGciOiJFUzM4NCJ9.e30.c2ln",
		}},
		{"capabilities order kept", ivsrt.ParticipantToken{
			UserID:          "bob",
			Capabilities:    []ivsrt.Capability{ivsrt.CapabilitySubscribe, ivsrt.CapabilityPublish},
			DurationMinutes: 1,
			CreatedAt:       created,
			ExpirationTime:  created.Add(time.Minute),
		}},
		{"subscribe only", ivsrt.ParticipantToken{
			Capabilities:    []ivsrt.Capability{ivsrt.CapabilitySubscribe},
			DurationMinutes: 60,
			CreatedAt:       created,
			ExpirationTime:  created.Add(time.Hour),
		}},
		{"no capabilities, attributes or user", ivsrt.ParticipantToken{
			DurationMinutes: ivsrt.MaxTokenDurationMinutes,
			CreatedAt:       created,
			ExpirationTime:  created.Add(ivsrt.MaxTokenDurationMinutes * time.Minute),
		}},
	}
	e := newEnv(t, open)
	st := e.createStage(t, "tokens", nil)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tok := tt.tok
			tok.ParticipantID = ivsrt.NewParticipantID()
			tok.StageARN = st.ARN
			if err := e.s.CreateParticipantToken(e.ctx, &tok); err != nil {
				t.Fatalf("CreateParticipantToken: %v", err)
			}
			got, err := e.s.GetParticipantToken(e.ctx, tok.ParticipantID)
			if err != nil {
				t.Fatalf("GetParticipantToken: %v", err)
			}
			checkToken(t, "GetParticipantToken", got, &tok)
			if got.Revoked() {
				t.Errorf("Revoked: got true, want false")
			}
		})
	}

	t.Run("duplicate participant id", func(t *testing.T) {
		first := e.createToken(t, st.ARN)
		dup := newToken(st.ARN, e.clock.Now())
		dup.ParticipantID, dup.UserID = first.ParticipantID, "impostor"
		wantCode(t, "CreateParticipantToken", e.s.CreateParticipantToken(e.ctx, dup), ivsrt.ECONFLICT)
		got, err := e.s.GetParticipantToken(e.ctx, first.ParticipantID)
		if err != nil {
			t.Fatalf("GetParticipantToken: %v", err)
		}
		checkToken(t, "the first token", got, first)
	})

	t.Run("unknown stage", func(t *testing.T) {
		tok := newToken(newARN(), e.clock.Now())
		wantCode(t, "CreateParticipantToken", e.s.CreateParticipantToken(e.ctx, tok), ivsrt.ENOTFOUND)
		_, err := e.s.GetParticipantToken(e.ctx, tok.ParticipantID)
		wantCode(t, "GetParticipantToken", err, ivsrt.ENOTFOUND)
	})
}

func testRevokeParticipantToken(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	st := e.createStage(t, "revoke", nil)
	other := e.createStage(t, "other", nil)
	get := func(t *testing.T, id ivsrt.ParticipantID) *ivsrt.ParticipantToken {
		t.Helper()
		tok, err := e.s.GetParticipantToken(e.ctx, id)
		if err != nil {
			t.Fatalf("GetParticipantToken: %v", err)
		}
		return tok
	}

	t.Run("keeps the first time and reason", func(t *testing.T) {
		tok := e.createToken(t, st.ARN)
		first := e.clock.Advance(time.Minute)
		if err := e.s.RevokeParticipantToken(e.ctx, st.ARN, tok.ParticipantID, "kicked"); err != nil {
			t.Fatalf("RevokeParticipantToken: %v", err)
		}
		want := *tok
		want.RevokedAt, want.RevokeReason = first, "kicked"
		checkToken(t, "after the first revoke", get(t, tok.ParticipantID), &want)
		if !get(t, tok.ParticipantID).Revoked() {
			t.Errorf("Revoked: got false, want true")
		}

		e.clock.Advance(time.Minute)
		if err := e.s.RevokeParticipantToken(e.ctx, st.ARN, tok.ParticipantID, "again"); err != nil {
			t.Fatalf("RevokeParticipantToken again: got %v, want nil", err)
		}
		checkToken(t, "after the second revoke", get(t, tok.ParticipantID), &want)
	})

	t.Run("no reason", func(t *testing.T) {
		tok := e.createToken(t, st.ARN)
		at := e.clock.Advance(time.Second)
		if err := e.s.RevokeParticipantToken(e.ctx, st.ARN, tok.ParticipantID, ""); err != nil {
			t.Fatalf("RevokeParticipantToken: %v", err)
		}
		want := *tok
		want.RevokedAt = at
		checkToken(t, "revoked token", get(t, tok.ParticipantID), &want)
	})

	t.Run("token of another stage", func(t *testing.T) {
		tok := e.createToken(t, st.ARN)
		err := e.s.RevokeParticipantToken(e.ctx, other.ARN, tok.ParticipantID, "wrong stage")
		wantCode(t, "RevokeParticipantToken", err, ivsrt.ENOTFOUND)
		checkToken(t, "token left alone", get(t, tok.ParticipantID), tok)
	})

	t.Run("unknown participant", func(t *testing.T) {
		err := e.s.RevokeParticipantToken(e.ctx, st.ARN, ivsrt.NewParticipantID(), "")
		wantCode(t, "RevokeParticipantToken", err, ivsrt.ENOTFOUND)
	})
}

func testSessionLifecycle(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	st := e.createStage(t, "lifecycle", nil)
	p1, p2 := ivsrt.NewParticipantID(), ivsrt.NewParticipantID()

	// The first JOINED starts a session.
	j1 := e.record(t, &ivsrt.Event{
		StageARN:      st.ARN,
		Name:          ivsrt.EventJoined,
		ParticipantID: p1,
		Time:          e.clock.Advance(time.Second),
		UserID:        "alice",
		Attributes:    map[string]string{"displayName": "Alice"},
		Protocol:      "WHIP",
		Client:        aliceClient,
	})
	sid := j1.SessionID
	if !sessionIDPattern.MatchString(string(sid)) {
		t.Fatalf("session id: got %q, want a match of %v", sid, sessionIDPattern)
	}
	if got := e.getStage(t, st.ARN).ActiveSessionID; got != sid {
		t.Errorf("ActiveSessionID after the first join: got %q, want %q", got, sid)
	}
	checkSession(t, "session after the first join", e.getSession(t, st.ARN, sid),
		&ivsrt.StageSession{ID: sid, StageARN: st.ARN, StartTime: j1.Time})
	want1 := &ivsrt.Participant{ID: p1, StageARN: st.ARN, SessionID: sid, UserID: "alice",
		Attributes: map[string]string{"displayName": "Alice"}, State: ivsrt.ParticipantConnected,
		FirstJoinTime: j1.Time, Protocol: "WHIP", Client: aliceClient}
	checkParticipant(t, "p1 after joining", e.getParticipant(t, st.ARN, sid, p1), want1)

	// A second participant joins the same session; no protocol is UNKNOWN.
	j2 := e.record(t, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventJoined, ParticipantID: p2, Time: e.clock.Advance(time.Second), UserID: "bob"})
	if j2.SessionID != sid {
		t.Errorf("second join: SessionID: got %q, want %q", j2.SessionID, sid)
	}
	want2 := &ivsrt.Participant{ID: p2, StageARN: st.ARN, SessionID: sid, UserID: "bob",
		State: ivsrt.ParticipantConnected, FirstJoinTime: j2.Time, Protocol: "UNKNOWN"}
	checkParticipant(t, "p2 after joining", e.getParticipant(t, st.ARN, sid, p2), want2)
	if got := e.allSessions(t, st.ARN); len(got) != 1 {
		t.Errorf("ListStageSessions with two participants: got %v, want one session", sessionIDs(got))
	}

	// PUBLISH_STARTED sets Published.
	if ev := e.event(t, st.ARN, ivsrt.EventPublishStarted, p1); ev.SessionID != sid {
		t.Errorf("PUBLISH_STARTED: SessionID: got %q, want %q", ev.SessionID, sid)
	}
	want1.Published = true
	checkParticipant(t, "p1 after publishing", e.getParticipant(t, st.ARN, sid, p1), want1)
	checkParticipant(t, "p2 after p1 published", e.getParticipant(t, st.ARN, sid, p2), want2)

	// SUBSCRIBE_STARTED keeps the remote participant.
	sub := e.record(t, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventSubscribeStarted, ParticipantID: p2,
		RemoteParticipantID: p1, Time: e.clock.Advance(time.Second)})
	events := e.allEvents(t, st.ARN, sid, p2)
	if got, want := eventNames(events), []ivsrt.EventName{ivsrt.EventJoined, ivsrt.EventSubscribeStarted}; !slices.Equal(got, want) {
		t.Fatalf("p2's events: got %v, want %v", got, want)
	}
	checkEvent(t, "SUBSCRIBE_STARTED", events[1], &ivsrt.Event{StageARN: st.ARN, SessionID: sid,
		Name: ivsrt.EventSubscribeStarted, ParticipantID: p2, RemoteParticipantID: p1, Time: sub.Time})

	// Published means ever published.
	e.event(t, st.ARN, ivsrt.EventPublishStopped, p1)
	checkParticipant(t, "p1 after unpublishing", e.getParticipant(t, st.ARN, sid, p1), want1)

	// LEFT of one keeps the session.
	e.event(t, st.ARN, ivsrt.EventLeft, p1)
	want1.State = ivsrt.ParticipantDisconnected
	checkParticipant(t, "p1 after leaving", e.getParticipant(t, st.ARN, sid, p1), want1)
	if got := e.getStage(t, st.ARN).ActiveSessionID; got != sid {
		t.Errorf("ActiveSessionID after one left: got %q, want %q", got, sid)
	}
	if s := e.getSession(t, st.ARN, sid); !s.Active() {
		t.Errorf("session after one left: EndTime: got %v, want zero", s.EndTime)
	}

	// LEFT of the last ends it.
	last := e.event(t, st.ARN, ivsrt.EventLeft, p2)
	want2.State = ivsrt.ParticipantDisconnected
	checkParticipant(t, "p2 after leaving", e.getParticipant(t, st.ARN, sid, p2), want2)
	if got := e.getStage(t, st.ARN).ActiveSessionID; got != "" {
		t.Errorf("ActiveSessionID after the last left: got %q, want \"\"", got)
	}
	ended := e.getSession(t, st.ARN, sid)
	checkSession(t, "session after the last left", ended,
		&ivsrt.StageSession{ID: sid, StageARN: st.ARN, StartTime: j1.Time, EndTime: last.Time})
	if ended.Active() {
		t.Errorf("ended session: Active: got true, want false")
	}

	// The next JOINED starts a new session, where p1 starts afresh.
	j3 := e.join(t, st.ARN, p1, "alice")
	sid2 := j3.SessionID
	if sid2 == sid || !sessionIDPattern.MatchString(string(sid2)) {
		t.Fatalf("new session id: got %q, want a new match of %v (old %q)", sid2, sessionIDPattern, sid)
	}
	if got := e.getStage(t, st.ARN).ActiveSessionID; got != sid2 {
		t.Errorf("ActiveSessionID of the new session: got %q, want %q", got, sid2)
	}
	checkParticipant(t, "p1 in the new session", e.getParticipant(t, st.ARN, sid2, p1),
		&ivsrt.Participant{ID: p1, StageARN: st.ARN, SessionID: sid2, UserID: "alice",
			Attributes: map[string]string{"userId": "alice"}, State: ivsrt.ParticipantConnected,
			FirstJoinTime: j3.Time, Protocol: "UNKNOWN"})
	checkParticipant(t, "p1 in the old session", e.getParticipant(t, st.ARN, sid, p1), want1)
	if got, want := sessionIDs(e.allSessions(t, st.ARN)), []ivsrt.SessionID{sid2, sid}; !slices.Equal(got, want) {
		t.Errorf("ListStageSessions: got %v, want %v", got, want)
	}
	if got := participantIDs(e.allParticipants(t, st.ARN, sid2)); !slices.Equal(got, []ivsrt.ParticipantID{p1}) {
		t.Errorf("ListParticipants of the new session: got %v, want [%s]", got, p1)
	}
}

// aliceClient is what a browser client says of itself.
var aliceClient = ivsrt.ClientDetails{OSName: "Linux", OSVersion: "x86_64", BrowserName: "Chrome",
	BrowserVersion: "131.0.0.0", SDKVersion: "1.4.0"}

// testJoinClient: a rejoin keeps what the first client said of itself,
// and fills in what it left unsaid.
func testJoinClient(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	st := e.createStage(t, "clients", nil)
	p1 := ivsrt.NewParticipantID()
	sid := e.join(t, st.ARN, p1, "alice").SessionID
	if got := e.getParticipant(t, st.ARN, sid, p1).Client; got != (ivsrt.ClientDetails{}) {
		t.Errorf("a client that said nothing: got %+v", got)
	}
	// A rejoin keeps what the first client said of itself, and fills
	// what it left unsaid.
	e.record(t, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventJoined, ParticipantID: p1, Time: e.clock.Advance(time.Second), UserID: "alice",
		Client: ivsrt.ClientDetails{OSName: "Linux", SDKVersion: "1.0.0"}})
	e.record(t, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventJoined, ParticipantID: p1, Time: e.clock.Advance(time.Second), UserID: "alice",
		Client: ivsrt.ClientDetails{OSName: "Windows", BrowserName: "Firefox", SDKVersion: "2.0.0"}})
	if got, want := e.getParticipant(t, st.ARN, sid, p1).Client, (ivsrt.ClientDetails{OSName: "Linux", BrowserName: "Firefox", SDKVersion: "1.0.0"}); got != want {
		t.Errorf("p1's client after rejoins: got %+v, want %+v", got, want)
	}

}

func testRejoin(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	st := e.createStage(t, "rejoin", nil)
	p1, p2 := ivsrt.NewParticipantID(), ivsrt.NewParticipantID()
	first := e.join(t, st.ARN, p1, "alice")
	sid := first.SessionID
	second := e.join(t, st.ARN, p2, "bob")
	e.event(t, st.ARN, ivsrt.EventPublishStarted, p1)
	e.event(t, st.ARN, ivsrt.EventLeft, p1)

	again := e.join(t, st.ARN, p1, "alice")
	if again.SessionID != sid {
		t.Errorf("rejoin: SessionID: got %q, want %q", again.SessionID, sid)
	}
	checkParticipant(t, "p1 after rejoining", e.getParticipant(t, st.ARN, sid, p1),
		&ivsrt.Participant{ID: p1, StageARN: st.ARN, SessionID: sid, UserID: "alice",
			Attributes: map[string]string{"userId": "alice"}, State: ivsrt.ParticipantConnected,
			FirstJoinTime: first.Time, Published: true, Protocol: "UNKNOWN"})

	// A repeated JOINED of a connected participant changes nothing either.
	e.join(t, st.ARN, p2, "bob")
	checkParticipant(t, "p2 after a repeated join", e.getParticipant(t, st.ARN, sid, p2),
		&ivsrt.Participant{ID: p2, StageARN: st.ARN, SessionID: sid, UserID: "bob",
			Attributes: map[string]string{"userId": "bob"}, State: ivsrt.ParticipantConnected,
			FirstJoinTime: second.Time, Protocol: "UNKNOWN"})

	if got, want := participantIDs(e.allParticipants(t, st.ARN, sid)), []ivsrt.ParticipantID{p1, p2}; !slices.Equal(got, want) {
		t.Errorf("ListParticipants: got %v, want %v", got, want)
	}
	want := []ivsrt.EventName{ivsrt.EventJoined, ivsrt.EventPublishStarted, ivsrt.EventLeft, ivsrt.EventJoined}
	if got := eventNames(e.allEvents(t, st.ARN, sid, p1)); !slices.Equal(got, want) {
		t.Errorf("p1's events: got %v, want %v", got, want)
	}
	if got := e.allSessions(t, st.ARN); len(got) != 1 {
		t.Errorf("ListStageSessions: got %v, want one session", sessionIDs(got))
	}
}

func testEventConflict(t *testing.T, open OpenFunc) {
	names := []ivsrt.EventName{
		ivsrt.EventLeft, ivsrt.EventPublishStarted, ivsrt.EventPublishStopped,
		ivsrt.EventSubscribeStarted, ivsrt.EventSubscribeStopped,
		ivsrt.EventPublishError, ivsrt.EventSubscribeError,
	}
	tests := []struct {
		name string
		// setup prepares the stage and returns who sends the events and the
		// session expected to be active afterwards ("" for none).
		setup func(t *testing.T, e *env, arn ivsrt.StageARN) (ivsrt.ParticipantID, ivsrt.SessionID)
	}{
		{"idle stage", func(t *testing.T, e *env, arn ivsrt.StageARN) (ivsrt.ParticipantID, ivsrt.SessionID) {
			return ivsrt.NewParticipantID(), ""
		}},
		{"never joined", func(t *testing.T, e *env, arn ivsrt.StageARN) (ivsrt.ParticipantID, ivsrt.SessionID) {
			return ivsrt.NewParticipantID(), e.join(t, arn, ivsrt.NewParticipantID(), "u").SessionID
		}},
		{"left the session", func(t *testing.T, e *env, arn ivsrt.StageARN) (ivsrt.ParticipantID, ivsrt.SessionID) {
			stays, leaves := ivsrt.NewParticipantID(), ivsrt.NewParticipantID()
			sid := e.join(t, arn, stays, "u").SessionID
			e.join(t, arn, leaves, "v")
			e.event(t, arn, ivsrt.EventLeft, leaves)
			return leaves, sid
		}},
		{"in an earlier session", func(t *testing.T, e *env, arn ivsrt.StageARN) (ivsrt.ParticipantID, ivsrt.SessionID) {
			old := ivsrt.NewParticipantID()
			e.join(t, arn, old, "u")
			e.event(t, arn, ivsrt.EventLeft, old)
			return old, e.join(t, arn, ivsrt.NewParticipantID(), "v").SessionID
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, open)
			st := e.createStage(t, "conflict", nil)
			id, sid := tt.setup(t, e, st.ARN)
			sessions := e.allSessions(t, st.ARN)
			var before []*ivsrt.Participant
			if sid != "" {
				before = e.allParticipants(t, st.ARN, sid)
			}
			var eventsBefore []*ivsrt.Event
			if sid != "" {
				eventsBefore = e.allEvents(t, st.ARN, sid, id)
			}
			for _, name := range names {
				err := e.s.RecordEvent(e.ctx, &ivsrt.Event{StageARN: st.ARN, Name: name, ParticipantID: id,
					RemoteParticipantID: ivsrt.NewParticipantID(), Time: e.clock.Advance(time.Second)})
				wantCode(t, string(name), err, ivsrt.ECONFLICT)
			}
			if got := e.getStage(t, st.ARN).ActiveSessionID; got != sid {
				t.Errorf("ActiveSessionID: got %q, want %q", got, sid)
			}
			if got := sessionIDs(e.allSessions(t, st.ARN)); !slices.Equal(got, sessionIDs(sessions)) {
				t.Errorf("ListStageSessions: got %v, want %v", got, sessionIDs(sessions))
			}
			if sid == "" {
				return
			}
			after := e.allParticipants(t, st.ARN, sid)
			if !slices.Equal(participantIDs(after), participantIDs(before)) {
				t.Fatalf("ListParticipants: got %v, want %v", participantIDs(after), participantIDs(before))
			}
			for i := range after {
				checkParticipant(t, "participant", after[i], before[i])
			}
			if got := e.allEvents(t, st.ARN, sid, id); len(got) != len(eventsBefore) {
				t.Errorf("events recorded: got %v, want %v", eventNames(got), eventNames(eventsBefore))
			}
		})
	}
}

func testJoinError(t *testing.T, open OpenFunc) {
	t.Run("idle stage", func(t *testing.T) {
		e := newEnv(t, open)
		st := e.createStage(t, "idle", nil)
		ev := &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventJoinError, ParticipantID: ivsrt.NewParticipantID(),
			ErrorCode: ivsrt.ErrQuotaExceeded, Time: e.clock.Advance(time.Second)}
		if err := e.s.RecordEvent(e.ctx, ev); err != nil {
			t.Fatalf("RecordEvent JOIN_ERROR: got %v, want nil", err)
		}
		if ev.SessionID != "" {
			t.Errorf("SessionID: got %q, want \"\"", ev.SessionID)
		}
		if got := e.getStage(t, st.ARN).ActiveSessionID; got != "" {
			t.Errorf("ActiveSessionID: got %q, want \"\"", got)
		}
		if got := e.allSessions(t, st.ARN); len(got) != 0 {
			t.Errorf("ListStageSessions: got %v, want none", sessionIDs(got))
		}
	})

	t.Run("active session", func(t *testing.T) {
		e := newEnv(t, open)
		st := e.createStage(t, "busy", nil)
		in, refused := ivsrt.NewParticipantID(), ivsrt.NewParticipantID()
		sid := e.join(t, st.ARN, in, "u").SessionID
		ev := e.record(t, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventJoinError, ParticipantID: refused,
			ErrorCode: ivsrt.ErrInsufficientCapabilities, Time: e.clock.Advance(time.Second)})
		if ev.SessionID != sid {
			t.Errorf("SessionID: got %q, want %q", ev.SessionID, sid)
		}
		events := e.allEvents(t, st.ARN, sid, refused)
		if len(events) != 1 {
			t.Fatalf("events of the refused participant: got %v, want [JOIN_ERROR]", eventNames(events))
		}
		checkEvent(t, "JOIN_ERROR", events[0], &ivsrt.Event{StageARN: st.ARN, SessionID: sid, Name: ivsrt.EventJoinError,
			ParticipantID: refused, ErrorCode: ivsrt.ErrInsufficientCapabilities, Time: ev.Time})
		if got := participantIDs(e.allParticipants(t, st.ARN, sid)); !slices.Equal(got, []ivsrt.ParticipantID{in}) {
			t.Errorf("ListParticipants: got %v, want [%s]", got, in)
		}
		if got := e.getStage(t, st.ARN).ActiveSessionID; got != sid {
			t.Errorf("ActiveSessionID: got %q, want %q", got, sid)
		}
	})
}

func testConcurrentJoins(t *testing.T, open OpenFunc) {
	const n = 16
	e := newEnv(t, open)
	st := e.createStage(t, "crowd", nil)
	ids := make([]ivsrt.ParticipantID, n)
	for i := range ids {
		ids[i] = ivsrt.NewParticipantID()
	}
	run := func(name ivsrt.EventName) []*ivsrt.Event {
		evs := make([]*ivsrt.Event, n)
		errs := make([]error, n)
		var wg sync.WaitGroup
		for i := range n {
			evs[i] = &ivsrt.Event{StageARN: st.ARN, Name: name, ParticipantID: ids[i], Time: e.clock.Now()}
			wg.Go(func() { errs[i] = e.s.RecordEvent(e.ctx, evs[i]) })
		}
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				t.Fatalf("concurrent %s of participant %d: %v", name, i, err)
			}
		}
		return evs
	}

	joins := run(ivsrt.EventJoined)
	sid := joins[0].SessionID
	for i, ev := range joins {
		if ev.SessionID != sid {
			t.Errorf("join %d: SessionID: got %q, want %q", i, ev.SessionID, sid)
		}
	}
	if got := sessionIDs(e.allSessions(t, st.ARN)); !slices.Equal(got, []ivsrt.SessionID{sid}) {
		t.Errorf("ListStageSessions: got %v, want [%s]", got, sid)
	}
	if got := e.allParticipants(t, st.ARN, sid); len(got) != n {
		t.Errorf("ListParticipants: got %d, want %d", len(got), n)
	}

	e.clock.Advance(time.Second)
	run(ivsrt.EventLeft)
	if got := e.getStage(t, st.ARN).ActiveSessionID; got != "" {
		t.Errorf("ActiveSessionID after everyone left: got %q, want \"\"", got)
	}
	if s := e.getSession(t, st.ARN, sid); s.Active() {
		t.Errorf("session after everyone left: EndTime: got zero, want %v", ms(e.clock.Now()))
	}
}

func testListParticipants(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	st := e.createStage(t, "filters", nil)
	// p1 alice: publishes, stays; p2 bob: leaves; p3 alice: stays;
	// p4 carol: publishes, leaves; p5 dave: stays, so the session lives on.
	p := make([]ivsrt.ParticipantID, 5)
	for i := range p {
		p[i] = ivsrt.NewParticipantID()
	}
	sid := e.join(t, st.ARN, p[0], "alice").SessionID
	e.join(t, st.ARN, p[1], "bob")
	e.join(t, st.ARN, p[2], "alice")
	e.event(t, st.ARN, ivsrt.EventPublishStarted, p[0])
	e.join(t, st.ARN, p[3], "carol")
	e.event(t, st.ARN, ivsrt.EventPublishStarted, p[3])
	e.event(t, st.ARN, ivsrt.EventLeft, p[1])
	e.event(t, st.ARN, ivsrt.EventPublishStopped, p[3])
	e.event(t, st.ARN, ivsrt.EventLeft, p[3])
	e.join(t, st.ARN, p[4], "dave")
	// p1's recording is active, p4's stopped when it left, p3's failed to
	// start; p2 and p5 are not recorded.
	for _, r := range []struct {
		id    ivsrt.ParticipantID
		state ivsrt.ParticipantRecordingState
	}{{p[0], ivsrt.RecordingActive}, {p[3], ivsrt.RecordingStopped}, {p[2], ivsrt.RecordingFailed}} {
		e.setRecording(t, &ivsrt.ParticipantRecording{StageARN: st.ARN, SessionID: sid, ParticipantID: r.id,
			Bucket: "recordings", Prefix: "prefix/" + string(r.id), State: r.state})
	}

	// A participant of another session of the same stage is never listed.
	other := e.createStage(t, "other", nil)
	stranger := ivsrt.NewParticipantID()
	otherSID := e.join(t, other.ARN, stranger, "alice").SessionID
	e.setRecording(t, &ivsrt.ParticipantRecording{StageARN: other.ARN, SessionID: otherSID, ParticipantID: stranger,
		Bucket: "recordings", State: ivsrt.RecordingActive})

	byID := map[ivsrt.ParticipantID]*ivsrt.Participant{}
	for _, id := range p {
		byID[id] = e.getParticipant(t, st.ARN, sid, id)
	}

	tests := []struct {
		name   string
		filter ivsrt.ParticipantFilter
		want   []ivsrt.ParticipantID
	}{
		{"none", ivsrt.ParticipantFilter{}, p},
		{"userId", ivsrt.ParticipantFilter{UserID: ptr("alice")}, []ivsrt.ParticipantID{p[0], p[2]}},
		{"userId of nobody", ivsrt.ParticipantFilter{UserID: ptr("mallory")}, nil},
		{"published", ivsrt.ParticipantFilter{Published: ptr(true)}, []ivsrt.ParticipantID{p[0], p[3]}},
		{"not published", ivsrt.ParticipantFilter{Published: ptr(false)}, []ivsrt.ParticipantID{p[1], p[2], p[4]}},
		{"connected", ivsrt.ParticipantFilter{State: ptr(ivsrt.ParticipantConnected)}, []ivsrt.ParticipantID{p[0], p[2], p[4]}},
		{"disconnected", ivsrt.ParticipantFilter{State: ptr(ivsrt.ParticipantDisconnected)}, []ivsrt.ParticipantID{p[1], p[3]}},
		{"recording active", ivsrt.ParticipantFilter{RecordingState: ptr("ACTIVE")}, []ivsrt.ParticipantID{p[0]}},
		{"recording stopped", ivsrt.ParticipantFilter{RecordingState: ptr("STOPPED")}, []ivsrt.ParticipantID{p[3]}},
		{"recording failed", ivsrt.ParticipantFilter{RecordingState: ptr("FAILED")}, []ivsrt.ParticipantID{p[2]}},
		{"recording starting", ivsrt.ParticipantFilter{RecordingState: ptr("STARTING")}, nil},
	}
	for _, tt := range tests {
		for _, limit := range []int{1, 2, ivsrt.MaxPageSize} {
			t.Run(fmt.Sprintf("%s limit %d", tt.name, limit), func(t *testing.T) {
				pages := paginate(t, limit, func(pg ivsrt.Page) ([]*ivsrt.Participant, string, error) {
					return e.s.ListParticipants(e.ctx, st.ARN, sid, tt.filter, pg)
				})
				got := flatten(pages)
				if !slices.Equal(participantIDs(got), tt.want) {
					t.Fatalf("participants: got %v, want %v", participantIDs(got), tt.want)
				}
				for _, pt := range got {
					checkParticipant(t, "listed participant", pt, byID[pt.ID])
				}
				wantPages := max(1, (len(tt.want)+limit-1)/limit)
				if len(pages) != wantPages {
					t.Errorf("pages: got %d, want %d", len(pages), wantPages)
				}
			})
		}
	}
}

func testListParticipantEvents(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	st := e.createStage(t, "events", nil)
	p1, p2 := ivsrt.NewParticipantID(), ivsrt.NewParticipantID()
	var want []*ivsrt.Event
	add := func(ev *ivsrt.Event) {
		t.Helper()
		e.record(t, ev)
		if ev.ParticipantID == p1 {
			want = append(want, &ivsrt.Event{StageARN: ev.StageARN, SessionID: ev.SessionID, Name: ev.Name,
				ParticipantID: ev.ParticipantID, RemoteParticipantID: ev.RemoteParticipantID, ErrorCode: ev.ErrorCode, Time: ev.Time})
		}
	}
	at := func() time.Time { return e.clock.Advance(1500 * time.Millisecond) }
	add(&ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventJoined, ParticipantID: p1, Time: at(), UserID: "a"})
	add(&ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventJoined, ParticipantID: p2, Time: at(), UserID: "b"})
	add(&ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventPublishStarted, ParticipantID: p1, Time: at()})
	add(&ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventPublishStarted, ParticipantID: p2, Time: at()})
	same := at() // events at the same time keep the order they were recorded in
	add(&ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventSubscribeError, ParticipantID: p1, RemoteParticipantID: p2, ErrorCode: ivsrt.ErrPublisherNotFound, Time: same})
	add(&ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventSubscribeStarted, ParticipantID: p1, RemoteParticipantID: p2, Time: same})
	add(&ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventSubscribeStarted, ParticipantID: p2, RemoteParticipantID: p1, Time: at()})
	add(&ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventPublishError, ParticipantID: p1, ErrorCode: ivsrt.ErrInternalServer, Time: at()})
	add(&ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventSubscribeStopped, ParticipantID: p1, RemoteParticipantID: p2, Time: at()})
	add(&ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventPublishStopped, ParticipantID: p1, Time: at()})
	add(&ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventLeft, ParticipantID: p1, Time: at()})
	add(&ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventLeft, ParticipantID: p2, Time: at()})
	sid := want[0].SessionID
	// p1 in the next session is another story.
	next := e.join(t, st.ARN, p1, "a").SessionID

	tests := []struct {
		limit int
		sizes []int
	}{
		{1, []int{1, 1, 1, 1, 1, 1, 1, 1}},
		{3, []int{3, 3, 2}},
		{8, []int{8}},
		{ivsrt.MaxPageSize, []int{8}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("limit %d", tt.limit), func(t *testing.T) {
			pages := paginate(t, tt.limit, func(pg ivsrt.Page) ([]*ivsrt.Event, string, error) {
				return e.s.ListParticipantEvents(e.ctx, st.ARN, sid, p1, pg)
			})
			if got := sizes(pages); !slices.Equal(got, tt.sizes) {
				t.Errorf("page sizes: got %v, want %v", got, tt.sizes)
			}
			got := flatten(pages)
			if !slices.Equal(eventNames(got), eventNames(want)) {
				t.Fatalf("events: got %v, want %v", eventNames(got), eventNames(want))
			}
			for i := range got {
				checkEvent(t, fmt.Sprintf("event %d", i), got[i], want[i])
			}
		})
	}
	if got := eventNames(e.allEvents(t, st.ARN, next, p1)); !slices.Equal(got, []ivsrt.EventName{ivsrt.EventJoined}) {
		t.Errorf("p1's events in the next session: got %v, want [JOINED]", got)
	}
	if got := e.allEvents(t, st.ARN, sid, ivsrt.NewParticipantID()); len(got) != 0 {
		t.Errorf("events of a stranger: got %v, want none", eventNames(got))
	}
}

func testListStageSessions(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	st := e.createStage(t, "sessions", nil)
	var want []*ivsrt.StageSession // oldest first
	for range 5 {
		id := ivsrt.NewParticipantID()
		j := e.join(t, st.ARN, id, "u")
		l := e.event(t, st.ARN, ivsrt.EventLeft, id)
		want = append(want, &ivsrt.StageSession{ID: j.SessionID, StageARN: st.ARN, StartTime: j.Time, EndTime: l.Time})
	}
	j := e.join(t, st.ARN, ivsrt.NewParticipantID(), "u")
	want = append(want, &ivsrt.StageSession{ID: j.SessionID, StageARN: st.ARN, StartTime: j.Time})
	slices.Reverse(want)

	// Another stage's sessions are never listed.
	other := e.createStage(t, "other", nil)
	e.join(t, other.ARN, ivsrt.NewParticipantID(), "u")

	tests := []struct {
		limit int
		sizes []int
	}{
		{1, []int{1, 1, 1, 1, 1, 1}},
		{2, []int{2, 2, 2}},
		{4, []int{4, 2}},
		{ivsrt.MaxPageSize, []int{6}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("limit %d", tt.limit), func(t *testing.T) {
			pages := paginate(t, tt.limit, func(pg ivsrt.Page) ([]*ivsrt.StageSession, string, error) {
				return e.s.ListStageSessions(e.ctx, st.ARN, pg)
			})
			if got := sizes(pages); !slices.Equal(got, tt.sizes) {
				t.Errorf("page sizes: got %v, want %v", got, tt.sizes)
			}
			got := flatten(pages)
			if !slices.Equal(sessionIDs(got), sessionIDs(want)) {
				t.Fatalf("sessions: got %v, want %v", sessionIDs(got), sessionIDs(want))
			}
			for i := range got {
				checkSession(t, fmt.Sprintf("session %d", i), got[i], want[i])
			}
		})
	}
}

func testStageIsolation(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	a := e.createStage(t, "a", nil)
	b := e.createStage(t, "b", nil)
	pa, pb := ivsrt.NewParticipantID(), ivsrt.NewParticipantID()
	sa := e.join(t, a.ARN, pa, "shared-user").SessionID
	sb := e.join(t, b.ARN, pb, "shared-user").SessionID
	if sa == sb {
		t.Fatalf("two stages share session %q", sa)
	}

	_, err := e.s.GetStageSession(e.ctx, b.ARN, sa)
	wantCode(t, "GetStageSession with the wrong stage", err, ivsrt.ENOTFOUND)
	_, err = e.s.GetParticipant(e.ctx, b.ARN, sa, pa)
	wantCode(t, "GetParticipant with the wrong stage", err, ivsrt.ENOTFOUND)
	_, err = e.s.GetParticipant(e.ctx, a.ARN, sa, pb)
	wantCode(t, "GetParticipant of another stage's participant", err, ivsrt.ENOTFOUND)
	_, err = e.s.GetParticipant(e.ctx, a.ARN, sb, pb)
	wantCode(t, "GetParticipant with another stage's session", err, ivsrt.ENOTFOUND)

	for _, f := range []ivsrt.ParticipantFilter{{}, {UserID: ptr("shared-user")}} {
		ps, next, err := e.s.ListParticipants(e.ctx, b.ARN, sa, f, ivsrt.Page{Limit: 10})
		if err != nil || len(ps) != 0 || next != "" {
			t.Errorf("ListParticipants with the wrong stage: got %v next %q err %v, want none", participantIDs(ps), next, err)
		}
	}
	evs, next, err := e.s.ListParticipantEvents(e.ctx, b.ARN, sa, pa, ivsrt.Page{Limit: 10})
	if err != nil || len(evs) != 0 || next != "" {
		t.Errorf("ListParticipantEvents with the wrong stage: got %v next %q err %v, want none", eventNames(evs), next, err)
	}
	if got := sessionIDs(e.allSessions(t, a.ARN)); !slices.Equal(got, []ivsrt.SessionID{sa}) {
		t.Errorf("ListStageSessions of a: got %v, want [%s]", got, sa)
	}

	// pa is in a's session, not b's.
	err = e.s.RecordEvent(e.ctx, &ivsrt.Event{StageARN: b.ARN, Name: ivsrt.EventPublishStarted, ParticipantID: pa, Time: e.clock.Now()})
	wantCode(t, "RecordEvent in the wrong stage", err, ivsrt.ECONFLICT)
	if got := e.getParticipant(t, a.ARN, sa, pa); got.Published {
		t.Errorf("pa after an event sent to the wrong stage: Published: got true, want false")
	}
	// The last to leave b ends b's session only.
	e.event(t, b.ARN, ivsrt.EventLeft, pb)
	if got := e.getStage(t, a.ARN).ActiveSessionID; got != sa {
		t.Errorf("a's ActiveSessionID after b emptied: got %q, want %q", got, sa)
	}
	if s := e.getSession(t, a.ARN, sa); !s.Active() {
		t.Errorf("a's session after b emptied: EndTime: got %v, want zero", s.EndTime)
	}
}

func testMalformedPage(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	st := e.createStage(t, "pages", nil)
	id := ivsrt.NewParticipantID()
	sid := e.join(t, st.ARN, id, "u").SessionID
	for _, after := range []string{"!not a position!", "\x00"} {
		page := ivsrt.Page{After: after, Limit: 10}
		tests := []struct {
			name string
			call func() error
		}{
			{"ListStages", func() error { _, _, err := e.s.ListStages(e.ctx, page); return err }},
			{"ListStorageConfigurations", func() error { _, _, err := e.s.ListStorageConfigurations(e.ctx, page); return err }},
			{"ListEncoderConfigurations", func() error { _, _, err := e.s.ListEncoderConfigurations(e.ctx, page); return err }},
			{"ListCompositions", func() error {
				_, _, err := e.s.ListCompositions(e.ctx, ivsrt.CompositionFilter{}, page)
				return err
			}},
			{"ListStageSessions", func() error { _, _, err := e.s.ListStageSessions(e.ctx, st.ARN, page); return err }},
			{"ListParticipants", func() error {
				_, _, err := e.s.ListParticipants(e.ctx, st.ARN, sid, ivsrt.ParticipantFilter{}, page)
				return err
			}},
			{"ListParticipantEvents", func() error {
				_, _, err := e.s.ListParticipantEvents(e.ctx, st.ARN, sid, id, page)
				return err
			}},
		}
		for _, tt := range tests {
			t.Run(fmt.Sprintf("%s %q", tt.name, after), func(t *testing.T) {
				wantCode(t, tt.name, tt.call(), ivsrt.EINVALID)
			})
		}
	}
}
