package sqlite

import (
	"context"
	"database/sql"
	"io/fs"
	"maps"
	"path/filepath"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/storetest"
)

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) ivsrt.Store {
		return openTestDB(t, filepath.Join(t.TempDir(), "ivsrt.db"), now)
	})
}

// openTestDB opens the database at path with the given clock and closes it
// when the test ends.
func openTestDB(t *testing.T, path string, now func() time.Time) *DB {
	t.Helper()
	db, err := Open(context.Background(), path)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	db.Now = now
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

var start = time.Date(2025, time.May, 4, 10, 0, 0, 987654321, time.UTC)

func newARN() ivsrt.StageARN {
	return ivsrt.NewStageARN("us-east-1", "123456789012", ivsrt.NewStageID())
}

func newToken(arn ivsrt.StageARN, now time.Time) *ivsrt.ParticipantToken {
	return &ivsrt.ParticipantToken{
		ParticipantID:   ivsrt.NewParticipantID(),
		StageARN:        arn,
		UserID:          "user",
		Attributes:      map[string]string{"role": "guest"},
		Capabilities:    []ivsrt.Capability{ivsrt.CapabilitySubscribe, ivsrt.CapabilityPublish},
		DurationMinutes: 60,
		CreatedAt:       now,
		ExpirationTime:  now.Add(time.Hour),
	}
}

func record(t *testing.T, db *DB, ev *ivsrt.Event) *ivsrt.Event {
	t.Helper()
	if err := db.RecordEvent(t.Context(), ev); err != nil {
		t.Fatalf("RecordEvent %s: %v", ev.Name, err)
	}
	return ev
}

// contents is everything a store holds about some stages and tokens, read
// through the store's interface.
type contents struct {
	Stages       []*ivsrt.Stage
	Tags         map[ivsrt.StageARN]map[string]string
	Tokens       []*ivsrt.ParticipantToken
	Sessions     map[ivsrt.StageARN][]*ivsrt.StageSession
	Participants map[ivsrt.SessionID][]*ivsrt.Participant
	Events       map[ivsrt.SessionID]map[ivsrt.ParticipantID][]*ivsrt.Event
}

func readContents(t *testing.T, db *DB, tokens []ivsrt.ParticipantID) *contents {
	t.Helper()
	ctx := t.Context()
	page := ivsrt.Page{Limit: ivsrt.MaxPageSize}
	c := &contents{
		Tags:         map[ivsrt.StageARN]map[string]string{},
		Sessions:     map[ivsrt.StageARN][]*ivsrt.StageSession{},
		Participants: map[ivsrt.SessionID][]*ivsrt.Participant{},
		Events:       map[ivsrt.SessionID]map[ivsrt.ParticipantID][]*ivsrt.Event{},
	}
	var err error
	if c.Stages, _, err = db.ListStages(ctx, page); err != nil {
		t.Fatalf("ListStages: %v", err)
	}
	for _, st := range c.Stages {
		if c.Tags[st.ARN], err = db.ListTags(ctx, string(st.ARN)); err != nil {
			t.Fatalf("ListTags: %v", err)
		}
		sessions, _, err := db.ListStageSessions(ctx, st.ARN, page)
		if err != nil {
			t.Fatalf("ListStageSessions: %v", err)
		}
		c.Sessions[st.ARN] = sessions
		for _, s := range sessions {
			ps, _, err := db.ListParticipants(ctx, st.ARN, s.ID, ivsrt.ParticipantFilter{}, page)
			if err != nil {
				t.Fatalf("ListParticipants: %v", err)
			}
			c.Participants[s.ID] = ps
			c.Events[s.ID] = map[ivsrt.ParticipantID][]*ivsrt.Event{}
			for _, p := range ps {
				if c.Events[s.ID][p.ID], _, err = db.ListParticipantEvents(ctx, st.ARN, s.ID, p.ID, page); err != nil {
					t.Fatalf("ListParticipantEvents: %v", err)
				}
			}
		}
	}
	for _, id := range tokens {
		tok, err := db.GetParticipantToken(ctx, id)
		if err != nil {
			t.Fatalf("GetParticipantToken: %v", err)
		}
		c.Tokens = append(c.Tokens, tok)
	}
	return c
}

func TestReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ivsrt.db")
	clock := storetest.NewClock(start)
	db := openTestDB(t, path, clock.Now)
	ctx := t.Context()

	sc := &ivsrt.StorageConfiguration{ARN: "arn:aws:ivs:us-east-1:123456789012:storage-configuration/AbCdEf123456",
		Name: "kept", S3BucketName: "recordings", Tags: map[string]string{"k": "v"}}
	if err := db.CreateStorageConfiguration(ctx, sc); err != nil {
		t.Fatalf("CreateStorageConfiguration: %v", err)
	}
	rec := &ivsrt.AutoParticipantRecording{
		StorageConfigurationARN:         string(sc.ARN),
		MediaTypes:                      []string{"AUDIO_VIDEO"},
		Thumbnail:                       &ivsrt.ThumbnailConfiguration{TargetIntervalSeconds: 30, Storage: []string{"LATEST"}, RecordingMode: "INTERVAL"},
		HLSTargetSegmentDurationSeconds: 4,
	}
	st := &ivsrt.Stage{ARN: newARN(), Name: "kept", Tags: map[string]string{"team": "video"}, AutoParticipantRecording: rec}
	tok1, tok2 := newToken(st.ARN, clock.Now()), newToken(st.ARN, clock.Now())
	if err := db.CreateStage(ctx, st, []*ivsrt.ParticipantToken{tok1, tok2}, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	bare := &ivsrt.Stage{ARN: newARN()}
	if err := db.CreateStage(ctx, bare, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	clock.Advance(time.Second)
	if err := db.RevokeParticipantToken(ctx, st.ARN, tok2.ParticipantID, "gone"); err != nil {
		t.Fatalf("RevokeParticipantToken: %v", err)
	}
	// An ended session, then an active one.
	record(t, db, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventJoined, ParticipantID: tok2.ParticipantID, Time: clock.Advance(time.Second), UserID: "user", Protocol: "WHIP"})
	record(t, db, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventPublishStarted, ParticipantID: tok2.ParticipantID, Time: clock.Advance(time.Second)})
	record(t, db, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventLeft, ParticipantID: tok2.ParticipantID, Time: clock.Advance(time.Second)})
	active := record(t, db, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventJoined, ParticipantID: tok1.ParticipantID, Time: clock.Advance(time.Second),
		UserID: "user", Attributes: map[string]string{"role": "guest"}}).SessionID
	record(t, db, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventSubscribeStarted, ParticipantID: tok1.ParticipantID,
		RemoteParticipantID: tok2.ParticipantID, Time: clock.Advance(time.Second)})

	tokens := []ivsrt.ParticipantID{tok1.ParticipantID, tok2.ParticipantID}
	before := readContents(t, db, tokens)
	if n := len(before.Sessions[st.ARN]); n != 2 {
		t.Fatalf("sessions before closing: got %d, want 2", n)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db = openTestDB(t, path, clock.Now)
	after := readContents(t, db, tokens)
	if !reflect.DeepEqual(after, before) {
		t.Errorf("after reopening: got %+v, want %+v", after, before)
	}
	got, err := db.GetStage(ctx, st.ARN)
	if err != nil {
		t.Fatalf("GetStage: %v", err)
	}
	if got.ActiveSessionID != active {
		t.Errorf("ActiveSessionID after reopening: got %q, want %q", got.ActiveSessionID, active)
	}
	if !maps.Equal(got.Tags, st.Tags) {
		t.Errorf("Tags after reopening: got %v, want %v", got.Tags, st.Tags)
	}
	gotSC, err := db.GetStorageConfiguration(ctx, sc.ARN)
	if err != nil {
		t.Fatalf("GetStorageConfiguration: %v", err)
	}
	if gotSC.Name != sc.Name || gotSC.S3BucketName != sc.S3BucketName || !maps.Equal(gotSC.Tags, sc.Tags) || !gotSC.CreatedAt.Equal(sc.CreatedAt) {
		t.Errorf("storage configuration after reopening: got %+v, want %+v", gotSC, sc)
	}
	if err := db.DeleteStorageConfiguration(ctx, sc.ARN); ivsrt.ErrorCode(err) != ivsrt.ECONFLICT {
		t.Errorf("DeleteStorageConfiguration of the one the stage names, after reopening: got %v, want ECONFLICT", err)
	}
	if tok := after.Tokens[1]; !tok.Revoked() || tok.RevokeReason != "gone" {
		t.Errorf("revoked token after reopening: got revoked %v reason %q, want true \"gone\"", tok.Revoked(), tok.RevokeReason)
	}

	// The reopened store carries on where the old one stopped.
	left := record(t, db, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventLeft, ParticipantID: tok1.ParticipantID, Time: clock.Advance(time.Second)})
	if left.SessionID != active {
		t.Errorf("LEFT after reopening: SessionID: got %q, want %q", left.SessionID, active)
	}
	s, err := db.GetStageSession(ctx, st.ARN, active)
	if err != nil {
		t.Fatalf("GetStageSession: %v", err)
	}
	if !s.EndTime.Equal(left.Time.Truncate(time.Millisecond)) {
		t.Errorf("EndTime: got %v, want %v", s.EndTime, left.Time.Truncate(time.Millisecond))
	}
	later := &ivsrt.Stage{ARN: newARN()}
	if err := db.CreateStage(ctx, later, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage after reopening: %v", err)
	}
	stages, _, err := db.ListStages(ctx, ivsrt.Page{Limit: 10})
	if err != nil {
		t.Fatalf("ListStages: %v", err)
	}
	want := []ivsrt.StageARN{st.ARN, bare.ARN, later.ARN}
	var arns []ivsrt.StageARN
	for _, s := range stages {
		arns = append(arns, s.ARN)
	}
	if !slices.Equal(arns, want) {
		t.Errorf("ListStages after reopening: got %v, want %v", arns, want)
	}
}

func appliedMigrations(t *testing.T, db *DB) map[string]int64 {
	t.Helper()
	rows, err := db.read.QueryContext(t.Context(), `SELECT name, applied_at FROM schema_migrations`)
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	defer rows.Close()
	applied := map[string]int64{}
	for rows.Next() {
		var name string
		var at int64
		if err := rows.Scan(&name, &at); err != nil {
			t.Fatalf("scan schema_migrations: %v", err)
		}
		applied[name] = at
	}
	if err := rows.Err(); err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return applied
}

func TestMigrations(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ivsrt.db")
	db := openTestDB(t, path, time.Now)
	ctx := t.Context()

	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil || len(names) == 0 {
		t.Fatalf("embedded migrations: got %v (%v), want some", names, err)
	}
	applied := appliedMigrations(t, db)
	if got := slices.Sorted(maps.Keys(applied)); !slices.Equal(got, names) {
		t.Errorf("recorded migrations: got %v, want %v", got, names)
	}
	for name, at := range applied {
		if at <= 0 {
			t.Errorf("%s applied_at: got %d, want a time", name, at)
		}
	}

	st := &ivsrt.Stage{ARN: newARN(), Tags: map[string]string{"a": "1"}}
	if err := db.CreateStage(ctx, st, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	if err := db.migrate(ctx); err != nil {
		t.Fatalf("migrate again: got %v, want nil", err)
	}
	if got := appliedMigrations(t, db); !maps.Equal(got, applied) {
		t.Errorf("recorded migrations after migrating again: got %v, want %v", got, applied)
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db = openTestDB(t, path, time.Now)
	if got := appliedMigrations(t, db); !maps.Equal(got, applied) {
		t.Errorf("recorded migrations after reopening: got %v, want %v", got, applied)
	}
	got, err := db.GetStage(ctx, st.ARN)
	if err != nil {
		t.Fatalf("GetStage after reopening: %v", err)
	}
	if !maps.Equal(got.Tags, st.Tags) {
		t.Errorf("Tags after reopening: got %v, want %v", got.Tags, st.Tags)
	}
}

func TestPragmas(t *testing.T) {
	db := openTestDB(t, filepath.Join(t.TempDir(), "ivsrt.db"), time.Now)
	tests := []struct {
		pragma string
		want   string
	}{
		{"journal_mode", "wal"},
		{"synchronous", "2"}, // FULL
		{"foreign_keys", "1"},
		{"busy_timeout", "10000"},
	}
	pools := []struct {
		name string
		pool *sql.DB
	}{
		{"write", db.write},
		{"read", db.read},
	}
	for _, tt := range tests {
		for _, p := range pools {
			t.Run(p.name+" "+tt.pragma, func(t *testing.T) {
				var got string
				if err := p.pool.QueryRowContext(t.Context(), "PRAGMA "+tt.pragma).Scan(&got); err != nil {
					t.Fatalf("PRAGMA %s: %v", tt.pragma, err)
				}
				if got != tt.want {
					t.Errorf("PRAGMA %s: got %v, want %v", tt.pragma, got, tt.want)
				}
			})
		}
	}
}

func TestConcurrentWriters(t *testing.T) {
	const writers = 16
	tests := []struct {
		name    string
		handles int // open DBs on the same file, as separate processes would
	}{
		{"one handle", 1},
		{"two handles", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "ivsrt.db")
			clock := storetest.NewClock(start)
			var dbs []*DB
			for range tt.handles {
				dbs = append(dbs, openTestDB(t, path, clock.Now))
			}
			ctx := t.Context()
			st := &ivsrt.Stage{ARN: newARN()}
			if err := dbs[0].CreateStage(ctx, st, nil, ivsrt.StageQuota{}); err != nil {
				t.Fatalf("CreateStage: %v", err)
			}

			toks := make([]*ivsrt.ParticipantToken, writers)
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for i := range writers {
				db := dbs[i%len(dbs)]
				toks[i] = newToken(st.ARN, clock.Now())
				wg.Go(func() {
					errs[i] = db.CreateParticipantToken(ctx, toks[i])
					// A reader beside the writers.
					if _, err := db.GetStage(ctx, st.ARN); err != nil && errs[i] == nil {
						errs[i] = err
					}
				})
			}
			wg.Wait()
			for i, err := range errs {
				if err != nil {
					t.Errorf("writer %d: got %v, want nil", i, err)
				}
			}
			for _, db := range dbs {
				for _, tok := range toks {
					if _, err := db.GetParticipantToken(ctx, tok.ParticipantID); err != nil {
						t.Errorf("GetParticipantToken %s: got %v, want nil", tok.ParticipantID, err)
					}
				}
			}
		})
	}
}

// TestOutboxReopen checks that the event stream survives a restart whole,
// ids included, and that new events continue after the old ones.
func TestOutboxReopen(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ivsrt.db")
	clock := storetest.NewClock(start)
	db := openTestDB(t, path, clock.Now)
	st := &ivsrt.Stage{ARN: newARN(), Name: "kept"}
	if err := db.CreateStage(t.Context(), st, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	id := ivsrt.NewParticipantID()
	record(t, db, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventJoined, ParticipantID: id, UserID: "u", Time: clock.Advance(time.Second)})
	record(t, db, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventPublishStarted, ParticipantID: id, Time: clock.Advance(time.Second)})
	before := storetest.ReadAllEvents(t, db, 0, 100)
	if len(before) != 4 {
		t.Fatalf("events before closing: got %d, want 4", len(before))
	}
	if err := db.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}

	db = openTestDB(t, path, clock.Now)
	after := storetest.ReadAllEvents(t, db, 0, 100)
	if !reflect.DeepEqual(after, before) {
		t.Errorf("after reopening: got %+v, want %+v", after, before)
	}
	record(t, db, &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventLeft, ParticipantID: id, Time: clock.Advance(time.Second)})
	more := storetest.ReadAllEvents(t, db, before[len(before)-1].Seq, 100)
	var names []string
	for _, ev := range more {
		names = append(names, ev.EventName())
		if ev.Seq <= before[len(before)-1].Seq {
			t.Errorf("%s: Seq %d, want above %d", ev.EventName(), ev.Seq, before[len(before)-1].Seq)
		}
	}
	if want := []string{ivsrt.StreamParticipantLeft, ivsrt.StreamSessionEnded}; !slices.Equal(names, want) {
		t.Errorf("events after reopening: got %v, want %v", names, want)
	}
}

// TestOutboxRollback checks that an event appended in a transaction that
// then fails (rolls back) is not left behind.
func TestOutboxRollback(t *testing.T) {
	db := openTestDB(t, filepath.Join(t.TempDir(), "ivsrt.db"), storetest.NewClock(start).Now)
	ctx := t.Context()
	st := &ivsrt.Stage{ARN: newARN(), Name: "s"}
	if err := db.CreateStage(ctx, st, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	last, err := db.LastEventSeq(ctx)
	if err != nil {
		t.Fatalf("LastEventSeq: %v", err)
	}
	tx, err := db.beginWrite(ctx)
	if err != nil {
		t.Fatalf("beginWrite: %v", err)
	}
	if err := appendEvent(ctx, tx, ivsrt.NewStageStreamEvent(st.ARN, "s", ivsrt.StreamStageUpdated, tx.now)); err != nil {
		t.Fatalf("appendEvent: %v", err)
	}
	if err := tx.Rollback(); err != nil {
		t.Fatalf("Rollback: %v", err)
	}
	if got := storetest.ReadAllEvents(t, db, last, 10); len(got) != 0 {
		t.Errorf("events after rollback: got %d, want none", len(got))
	}
}

// TestStorageMigration upgrades a database written before storage
// configurations existed, whose stages name storage configurations that
// were never created: they keep them, and they count as users of one
// created later with the same ARN.
func TestStorageMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ivsrt.db")
	ctx := t.Context()
	const legacy = "arn:aws:ivs:us-east-1:123456789012:storage-configuration/Legacy000000"
	named, off, bare := newARN(), newARN(), newARN()

	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	migrateBefore(t, old, "migrations/0004")
	for _, s := range []struct {
		arn ivsrt.StageARN
		rec any
	}{
		{named, `{"storageConfigurationArn":"` + legacy + `","mediaTypes":["AUDIO_VIDEO"]}`},
		{off, `{"storageConfigurationArn":"","mediaTypes":["AUDIO_VIDEO"]}`},
		{bare, nil},
	} {
		if _, err := old.ExecContext(ctx, `INSERT INTO stages (arn, name, recording, created_at, updated_at) VALUES (?, 'old', ?, 1, 1)`,
			string(s.arn), s.rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db := openTestDB(t, path, time.Now)
	columns := map[ivsrt.StageARN]sql.NullString{}
	for arn := range map[ivsrt.StageARN]bool{named: true, off: true, bare: true} {
		var col sql.NullString
		if err := db.read.QueryRowContext(ctx, `SELECT storage_configuration_arn FROM stages WHERE arn = ?`, string(arn)).Scan(&col); err != nil {
			t.Fatal(err)
		}
		columns[arn] = col
	}
	want := map[ivsrt.StageARN]sql.NullString{named: {String: legacy, Valid: true}, off: {}, bare: {}}
	if !maps.Equal(columns, want) {
		t.Errorf("storage_configuration_arn after the migration: got %v, want %v", columns, want)
	}

	// A stage keeps what it names through updates that do not change it.
	got, err := db.UpdateStage(ctx, named, ivsrt.StageUpdate{Name: ptr("renamed")})
	if err != nil {
		t.Fatalf("UpdateStage of the name: %v", err)
	}
	if got.AutoParticipantRecording == nil || got.AutoParticipantRecording.StorageConfigurationARN != legacy {
		t.Errorf("recording after UpdateStage of the name: got %+v, want it to name %s", got.AutoParticipantRecording, legacy)
	}
	_, err = db.UpdateStage(ctx, bare, ivsrt.StageUpdate{AutoParticipantRecording: &ivsrt.AutoParticipantRecording{StorageConfigurationARN: legacy}})
	if ivsrt.ErrorCode(err) != ivsrt.EINVALID {
		t.Errorf("UpdateStage naming the storage configuration that does not exist: got %v, want EINVALID", err)
	}

	sc := &ivsrt.StorageConfiguration{ARN: legacy, S3BucketName: "late"}
	if err := db.CreateStorageConfiguration(ctx, sc); err != nil {
		t.Fatalf("CreateStorageConfiguration: %v", err)
	}
	if err := db.DeleteStorageConfiguration(ctx, sc.ARN); ivsrt.ErrorCode(err) != ivsrt.ECONFLICT {
		t.Errorf("DeleteStorageConfiguration that an old stage names: got %v, want ECONFLICT", err)
	}
}

func ptr[T any](v T) *T { return &v }

// TestParticipantRecordingMigration upgrades a database written before
// participants had recordings: its participants are not recorded, and
// can be.
func TestParticipantRecordingMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ivsrt.db")
	ctx := t.Context()
	arn := newARN()
	const session, participant = "st-Old0000000000", "Old000000000"

	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	migrateBefore(t, old, "migrations/0005")
	for _, ins := range []struct {
		q    string
		args []any
	}{
		{`INSERT INTO stages (arn, name, created_at, updated_at) VALUES (?, 'old', 1, 1)`, []any{string(arn)}},
		{`INSERT INTO stage_sessions (session_id, stage_arn, start_time, end_time) VALUES (?, ?, 1, 2)`, []any{session, string(arn)}},
		{`INSERT INTO participants (session_id, participant_id, user_id, attributes, state, first_join_time, published)
			VALUES (?, ?, 'u', '{}', 'DISCONNECTED', 1, 1)`, []any{session, participant}},
	} {
		if _, err := old.ExecContext(ctx, ins.q, ins.args...); err != nil {
			t.Fatalf("%s: %v", ins.q, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db := openTestDB(t, path, time.Now)
	p, err := db.GetParticipant(ctx, arn, session, participant)
	if err != nil {
		t.Fatalf("GetParticipant: %v", err)
	}
	if p.RecordingBucket != "" || p.RecordingPrefix != "" || p.RecordingState != "" {
		t.Errorf("recording after the migration: got %q %q %q, want none", p.RecordingBucket, p.RecordingPrefix, p.RecordingState)
	}
	err = db.SetParticipantRecording(ctx, &ivsrt.ParticipantRecording{StageARN: arn, SessionID: session, ParticipantID: participant,
		Bucket: "b", Prefix: "p", State: ivsrt.RecordingStopped})
	if err != nil {
		t.Fatalf("SetParticipantRecording: %v", err)
	}
	stopped := "STOPPED"
	ps, _, err := db.ListParticipants(ctx, arn, session, ivsrt.ParticipantFilter{RecordingState: &stopped}, ivsrt.Page{Limit: 10})
	if err != nil || len(ps) != 1 || ps[0].RecordingBucket != "b" {
		t.Errorf("ListParticipants of STOPPED recordings: got %v, %v, want the old participant, recorded to b", ps, err)
	}
}

// TestPublicKeyMigration upgrades a database written before public keys:
// its tokens were all issued by the server, and public keys can be
// imported and tagged.
func TestPublicKeyMigration(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ivsrt.db")
	ctx := t.Context()
	arn := newARN()
	const participant = "Old000000000"

	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	migrateBefore(t, old, "migrations/0006")
	for _, ins := range []struct {
		q    string
		args []any
	}{
		{`INSERT INTO stages (arn, name, created_at, updated_at) VALUES (?, 'old', 1, 1)`, []any{string(arn)}},
		{`INSERT INTO participant_tokens (participant_id, stage_arn, user_id, attributes, capabilities, duration_minutes, created_at, expires_at)
			VALUES (?, ?, 'u', '{}', 'PUBLISH', 60, 1, 3600001)`, []any{participant, string(arn)}},
	} {
		if _, err := old.ExecContext(ctx, ins.q, ins.args...); err != nil {
			t.Fatalf("%s: %v", ins.q, err)
		}
	}
	if err := old.Close(); err != nil {
		t.Fatal(err)
	}

	db := openTestDB(t, path, time.Now)
	tok, err := db.GetParticipantToken(ctx, participant)
	if err != nil {
		t.Fatalf("GetParticipantToken: %v", err)
	}
	if tok.PublicKeyARN != "" || tok.UserID != "u" {
		t.Errorf("token after the migration: got key %q, user %q, want no key and user u", tok.PublicKeyARN, tok.UserID)
	}
	pk := &ivsrt.PublicKey{ARN: ivsrt.NewPublicKeyARN("us-east-1", "123456789012", ivsrt.NewPublicKeyID()),
		Material: "m", Fingerprint: "f", Tags: map[string]string{"a": "b"}}
	if err := db.ImportPublicKey(ctx, pk, ivsrt.PublicKeyQuota{}); err != nil {
		t.Fatalf("ImportPublicKey: %v", err)
	}
	if tags, err := db.ListTags(ctx, string(pk.ARN)); err != nil || tags["a"] != "b" {
		t.Errorf("ListTags of the public key: got %v, %v", tags, err)
	}
}

// migrateBefore applies to old, as the version that had them did, the
// migrations named before first: a database an older ivsrt left.
func migrateBefore(t *testing.T, old *sql.DB, first string) {
	t.Helper()
	ctx := t.Context()
	if _, err := old.ExecContext(ctx, `CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		t.Fatal(err)
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range names {
		if name >= first {
			break
		}
		body, err := fs.ReadFile(migrationFS, name)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := old.ExecContext(ctx, string(body)); err != nil {
			t.Fatalf("apply %s: %v", name, err)
		}
		if _, err := old.ExecContext(ctx, `INSERT INTO schema_migrations VALUES (?, 1)`, name); err != nil {
			t.Fatal(err)
		}
	}
}
