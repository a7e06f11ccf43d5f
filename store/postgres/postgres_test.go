package postgres

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/postgres/pgtest"
	"github.com/ivsrt/ivsrt/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func TestStore(t *testing.T) {
	storetest.Run(t, func(t *testing.T, now func() time.Time) ivsrt.Store {
		db := openTestDB(t, pgtest.Start(t))
		db.Now = now
		return db
	})
}

// openTestDB opens the database dsn names and closes it when the test ends.
func openTestDB(t *testing.T, dsn string) *DB {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	db, err := Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() {
		if err := db.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return db
}

func newARN() ivsrt.StageARN {
	return ivsrt.NewStageARN("us-east-1", "123456789012", ivsrt.NewStageID())
}

// migrations returns the names schema_migrations records.
func migrations(t *testing.T, db *DB) []string {
	t.Helper()
	var names []string
	err := db.read(t.Context(), func(conn *pgx.Conn) error {
		rows, err := conn.Query(t.Context(), `SELECT name FROM schema_migrations ORDER BY name`)
		if err != nil {
			return err
		}
		names, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		t.Fatalf("read schema_migrations: %v", err)
	}
	return names
}

func TestMigrations(t *testing.T) {
	dsn := pgtest.Start(t)
	// Every migration in the folder, in order.
	files, err := os.ReadDir("migrations")
	if err != nil {
		t.Fatal(err)
	}
	var want []string
	for _, f := range files {
		want = append(want, "migrations/"+f.Name())
	}
	if len(want) == 0 || want[0] != "migrations/0001_initial.sql" {
		t.Fatalf("migrations %v", want)
	}

	// Several nodes starting at once: each Open must succeed, and the
	// migrations be applied once.
	const nodes = 6
	dbs := make([]*DB, nodes)
	errs := make([]error, nodes)
	var wg sync.WaitGroup
	for i := range nodes {
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			dbs[i], errs[i] = Open(ctx, dsn)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("Open %d: %v", i, err)
		}
		t.Cleanup(func() { dbs[i].Close() })
	}
	if got := migrations(t, dbs[0]); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("schema_migrations: got %v, want %v", got, want)
	}

	// Opening again applies nothing and keeps the data.
	st := &ivsrt.Stage{ARN: newARN(), Name: "kept"}
	if err := dbs[0].CreateStage(t.Context(), st, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	again := openTestDB(t, dsn)
	if got := migrations(t, again); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("schema_migrations after reopening: got %v, want %v", got, want)
	}
	if got, err := again.GetStage(t.Context(), st.ARN); err != nil || got.Name != "kept" {
		t.Errorf("GetStage after reopening: got %v, %v", got, err)
	}
}

func TestOpenDSN(t *testing.T) {
	dsn := pgtest.Start(t)
	with := func(setting string) string {
		switch {
		case !strings.HasPrefix(dsn, "postgres://") && !strings.HasPrefix(dsn, "postgresql://"):
			return dsn + " " + setting
		case strings.Contains(dsn, "?"):
			return dsn + "&" + setting
		default:
			return dsn + "?" + setting
		}
	}
	db := openTestDB(t, with("pool_max_conns=2"))
	if got := int(db.pool.Config().MaxConns); got != 2 {
		t.Errorf("pool size: got %d, want 2", got)
	}
	// The pool's own setting is not sent to the server.
	if _, err := db.GetStage(t.Context(), newARN()); ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
		t.Errorf("GetStage with pool_max_conns set: got %v, want ENOTFOUND", err)
	}
	for _, bad := range []string{"0", "x", "-1"} {
		if db, err := Open(t.Context(), with("pool_max_conns="+bad)); err == nil {
			db.Close()
			t.Errorf("Open with pool_max_conns=%s: got nil error", bad)
		}
	}
}

// TestRetrySerializationFailure makes a SERIALIZABLE transaction lose to
// another on its first attempt and checks that write runs it again.
func TestRetrySerializationFailure(t *testing.T) {
	dsn := pgtest.Start(t)
	db := openTestDB(t, dsn)
	ctx := t.Context()
	other, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	defer other.Close(context.Background())

	insert := `INSERT INTO stages (arn, name, created_at, updated_at) VALUES ($1, '', now(), now())`
	attempts := 0
	err = db.write(ctx, pgx.Serializable, func(tx *Tx) error {
		attempts++
		var n int
		if err := tx.QueryRow(ctx, `SELECT COUNT(*) FROM stages`).Scan(&n); err != nil {
			return err
		}
		if attempts == 1 {
			// Another transaction reads what this one read, writes what
			// this one will write, and commits first: this one cannot be
			// serialized after it.
			otx, err := other.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.Serializable})
			if err != nil {
				return err
			}
			defer otx.Rollback(context.Background())
			if err := otx.QueryRow(ctx, `SELECT COUNT(*) FROM stages`).Scan(&n); err != nil {
				return err
			}
			if _, err := otx.Exec(ctx, insert, string(newARN())); err != nil {
				return err
			}
			if err := otx.Commit(ctx); err != nil {
				return err
			}
		}
		_, err := tx.Exec(ctx, insert, string(newARN()))
		return err
	})
	if err != nil {
		t.Fatalf("write: %v", err)
	}
	if attempts != 2 {
		t.Errorf("attempts: got %d, want 2", attempts)
	}
	if got := db.retries.Load(); got != 1 {
		t.Errorf("retries: got %d, want 1", got)
	}
}

func TestRetryable(t *testing.T) {
	tests := []struct {
		err  error
		want bool
	}{
		{&pgconn.PgError{Code: codeSerializationFailure}, true},
		{fmt.Errorf("commit: %w", &pgconn.PgError{Code: codeDeadlockDetected}), true},
		{&pgconn.PgError{Code: codeUniqueViolation}, false},
		{ivsrt.Errorf(ivsrt.EQUOTA, "full"), false},
		{errors.New("boom"), false},
	}
	for _, tt := range tests {
		if got := retryable(tt.err); got != tt.want {
			t.Errorf("retryable(%v): got %v, want %v", tt.err, got, tt.want)
		}
	}
}

// TestStageQuotaConcurrent creates stages from many goroutines (and two
// nodes) at once against a quota: exactly the quota's worth succeed.
func TestStageQuotaConcurrent(t *testing.T) {
	dsn := pgtest.Start(t)
	nodes := []*DB{openTestDB(t, dsn), openTestDB(t, dsn)}
	const (
		quota   = 5
		callers = 24
	)
	ctx := t.Context()
	errs := make([]error, callers)
	var wg sync.WaitGroup
	for i := range callers {
		wg.Go(func() {
			errs[i] = nodes[i%2].CreateStage(ctx, &ivsrt.Stage{ARN: newARN()}, nil, ivsrt.StageQuota{MaxStages: quota})
		})
	}
	wg.Wait()
	created := 0
	for i, err := range errs {
		switch ivsrt.ErrorCode(err) {
		case "":
			created++
		case ivsrt.EQUOTA:
		default:
			t.Errorf("CreateStage %d: %v", i, err)
		}
	}
	stages, _, err := nodes[0].ListStages(ctx, ivsrt.Page{Limit: 100})
	if err != nil {
		t.Fatalf("ListStages: %v", err)
	}
	if created != quota || len(stages) != quota {
		t.Errorf("created %d, listed %d; want %d of each", created, len(stages), quota)
	}
	t.Logf("retries: %d", nodes[0].retries.Load()+nodes[1].retries.Load())
}

// TestEventOrderUnderConcurrency has writers on two nodes append events
// while a reader follows the stream: the reader must never see a seq it
// skipped over appear later.
func TestEventOrderUnderConcurrency(t *testing.T) {
	if testing.Short() {
		t.Skip("slow")
	}
	dsn := pgtest.Start(t)
	nodes := []*DB{openTestDB(t, dsn), openTestDB(t, dsn)}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Second)
	defer cancel()

	var (
		wg      sync.WaitGroup
		writeMu sync.Mutex
		written int
	)
	for w := range 6 {
		wg.Go(func() {
			db := nodes[w%2]
			st := &ivsrt.Stage{ARN: newARN(), Name: fmt.Sprint("w", w)}
			if err := db.CreateStage(context.Background(), st, nil, ivsrt.StageQuota{}); err != nil {
				t.Errorf("CreateStage: %v", err)
				return
			}
			n := 2 // Stage Created, and Stage Deleted below
			for ctx.Err() == nil {
				id := ivsrt.NewParticipantID()
				if err := db.RecordEvent(context.Background(), &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventJoined, ParticipantID: id, UserID: "u"}); err != nil {
					t.Errorf("JOINED: %v", err)
					return
				}
				if err := db.RecordEvent(context.Background(), &ivsrt.Event{StageARN: st.ARN, Name: ivsrt.EventLeft, ParticipantID: id}); err != nil {
					t.Errorf("LEFT: %v", err)
					return
				}
				n += 4 // Session Started, Participant Joined, Participant Left, Session Ended
			}
			if err := db.DeleteStage(context.Background(), st.ARN); err != nil {
				t.Errorf("DeleteStage: %v", err)
			}
			writeMu.Lock()
			written += n
			writeMu.Unlock()
		})
	}

	// The reader follows the stream as a sink would: after the last seq it
	// saw. Every seq it skipped must stay missing.
	var (
		last    int64
		seen    int
		skipped []int64
	)
	writersDone, readerDone := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(readerDone)
		reader := nodes[0]
		for {
			var done bool
			select {
			case <-writersDone:
				done = true
			default:
			}
			evs, err := reader.ReadEvents(context.Background(), last, 50)
			if err != nil {
				t.Errorf("ReadEvents: %v", err)
				return
			}
			for _, ev := range evs {
				if ev.Seq <= last {
					t.Errorf("ReadEvents after %d returned %d", last, ev.Seq)
				}
				for s := last + 1; s < ev.Seq; s++ {
					skipped = append(skipped, s)
				}
				last = ev.Seq
				seen++
			}
			if done && len(evs) == 0 {
				return
			}
		}
	}()
	wg.Wait()
	close(writersDone)
	<-readerDone

	// Nothing was rolled back, so no seq should be missing at all; and in
	// any case none the reader passed over may exist now.
	all := storetest.ReadAllEvents(t, nodes[1], 0, 1000)
	for _, ev := range all {
		for _, s := range skipped {
			if ev.Seq == s {
				t.Fatalf("event %d appeared after the reader had passed it", s)
			}
		}
	}
	writeMu.Lock()
	defer writeMu.Unlock()
	if seen != len(all) || len(all) != written {
		t.Errorf("events: reader saw %d, stream has %d, writers wrote %d", seen, len(all), written)
	}
	t.Logf("%d events, %d seqs never used", len(all), len(skipped))
}

// TestNotifyAcrossNodes checks that a listener on one node wakes when
// another node writes events.
func TestNotifyAcrossNodes(t *testing.T) {
	dsn := pgtest.Start(t)
	listener, writer := openTestDB(t, dsn), openTestDB(t, dsn)
	ch, stop := listener.NotifyEvents()
	defer stop()

	// The listener wakes once it listens; until then a write may go
	// unnoticed, so write until a wake comes.
	deadline := time.After(10 * time.Second)
	drain := func() {
		for {
			select {
			case <-ch:
			default:
				return
			}
		}
	}
	// Wait for the first wake, which tells that the connection listens.
	select {
	case <-ch:
	case <-deadline:
		t.Fatal("listener never started")
	}
	drain()
	if err := writer.CreateStage(t.Context(), &ivsrt.Stage{ARN: newARN()}, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	select {
	case <-ch:
	case <-deadline:
		t.Fatal("no wake after another node wrote an event")
	}

	// A failed write tells nobody.
	drain()
	err := writer.CreateStage(t.Context(), &ivsrt.Stage{ARN: newARN()}, nil, ivsrt.StageQuota{MaxStages: 1})
	if ivsrt.ErrorCode(err) != ivsrt.EQUOTA {
		t.Fatalf("CreateStage over quota: got %v, want EQUOTA", err)
	}
	select {
	case <-ch:
		t.Error("woken by a write that was rolled back")
	case <-time.After(300 * time.Millisecond):
	}

	// After stop, the channel is no longer woken.
	stop()
	drain()
	if err := writer.CreateStage(t.Context(), &ivsrt.Stage{ARN: newARN()}, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	select {
	case <-ch:
		t.Error("woken after stop")
	case <-time.After(300 * time.Millisecond):
	}
}

// TestCloseStopsListener checks that Close ends the listening connection.
func TestCloseStopsListener(t *testing.T) {
	db, err := Open(t.Context(), pgtest.Start(t))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	_, stop := db.NotifyEvents()
	defer stop()
	done := make(chan struct{})
	go func() { db.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return")
	}
	if _, err := db.GetStage(t.Context(), newARN()); err == nil || ivsrt.ErrorCode(err) != ivsrt.EINTERNAL {
		t.Errorf("GetStage after Close: got %v, want an internal error", err)
	}
}

// TestStorageMigration upgrades a database written before storage
// configurations existed, whose stages name storage configurations that
// were never created: they keep them, and they count as users of one
// created later with the same ARN.
func TestStorageMigration(t *testing.T) {
	dsn := pgtest.Start(t)
	ctx := t.Context()
	const legacy = "arn:aws:ivs:us-east-1:123456789012:storage-configuration/Legacy000000"
	named, off, bare := newARN(), newARN(), newARN()

	old, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	migrateBefore(t, old, "migrations/0006")
	for _, s := range []struct {
		arn ivsrt.StageARN
		rec *string
	}{
		{named, ptr(`{"storageConfigurationArn":"` + legacy + `","mediaTypes":["AUDIO_VIDEO"]}`)},
		{off, ptr(`{"storageConfigurationArn":"","mediaTypes":["AUDIO_VIDEO"]}`)},
		{bare, nil},
	} {
		if _, err := old.Exec(ctx, `INSERT INTO stages (arn, name, recording, created_at, updated_at) VALUES ($1, 'old', $2, now(), now())`,
			string(s.arn), s.rec); err != nil {
			t.Fatal(err)
		}
	}
	if err := old.Close(ctx); err != nil {
		t.Fatal(err)
	}

	db := openTestDB(t, dsn)
	columns := map[ivsrt.StageARN]string{}
	err = db.read(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT arn, coalesce(storage_configuration_arn, '<null>') FROM stages`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var arn, col string
			if err := rows.Scan(&arn, &col); err != nil {
				return err
			}
			columns[ivsrt.StageARN(arn)] = col
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[ivsrt.StageARN]string{named: legacy, off: "<null>", bare: "<null>"}
	if fmt.Sprint(columns) != fmt.Sprint(want) {
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
	dsn := pgtest.Start(t)
	ctx := t.Context()
	arn := newARN()
	const session, participant = "st-Old0000000000", "Old000000000"

	old, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	migrateBefore(t, old, "migrations/0007")
	for _, ins := range []struct {
		q    string
		args []any
	}{
		{`INSERT INTO stages (arn, name, created_at, updated_at) VALUES ($1, 'old', now(), now())`, []any{string(arn)}},
		{`INSERT INTO stage_sessions (session_id, stage_arn, start_time, end_time) VALUES ($1, $2, now(), now())`, []any{session, string(arn)}},
		{`INSERT INTO participants (session_id, participant_id, user_id, attributes, state, first_join_time, published)
			VALUES ($1, $2, 'u', '{}', 'DISCONNECTED', now(), TRUE)`, []any{session, participant}},
	} {
		if _, err := old.Exec(ctx, ins.q, ins.args...); err != nil {
			t.Fatalf("%s: %v", ins.q, err)
		}
	}
	if err := old.Close(ctx); err != nil {
		t.Fatal(err)
	}

	db := openTestDB(t, dsn)
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
	dsn := pgtest.Start(t)
	ctx := t.Context()
	arn := newARN()
	const participant = "Old000000000"

	old, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	migrateBefore(t, old, "migrations/0008")
	for _, ins := range []struct {
		q    string
		args []any
	}{
		{`INSERT INTO stages (arn, name, created_at, updated_at) VALUES ($1, 'old', now(), now())`, []any{string(arn)}},
		{`INSERT INTO participant_tokens (participant_id, stage_arn, user_id, attributes, capabilities, duration_minutes, created_at, expires_at)
			VALUES ($1, $2, 'u', '{}', '{PUBLISH}', 60, now(), now() + interval '1 hour')`, []any{participant, string(arn)}},
	} {
		if _, err := old.Exec(ctx, ins.q, ins.args...); err != nil {
			t.Fatalf("%s: %v", ins.q, err)
		}
	}
	if err := old.Close(ctx); err != nil {
		t.Fatal(err)
	}

	db := openTestDB(t, dsn)
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
func migrateBefore(t *testing.T, old *pgx.Conn, first string) {
	t.Helper()
	ctx := t.Context()
	if _, err := old.Exec(ctx, `CREATE TABLE schema_migrations (name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)`); err != nil {
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
		if _, err := old.Exec(ctx, string(body)); err != nil {
			t.Fatalf("apply %s: %v", name, err)
		}
		if _, err := old.Exec(ctx, `INSERT INTO schema_migrations VALUES ($1, now())`, name); err != nil {
			t.Fatal(err)
		}
	}
}
