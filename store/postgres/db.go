// Package postgres stores ivsrt's state in PostgreSQL, so that several
// nodes can share it. It keeps the semantics of store/sqlite, and where
// SQLite relied on its single writer it takes row locks, an advisory lock
// for the event stream, or SERIALIZABLE isolation with retries.
package postgres

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/store/internal/storecore"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

var _ ivsrt.Store = (*DB)(nil)
var _ ivsrt.EventNotifier = (*DB)(nil)

// Advisory lock keys, in the database's one shared key space: "ivsrt" in
// the high bytes, the purpose in the low one.
const (
	migrationLock int64 = 0x6976737274_000001
	outboxLock    int64 = 0x6976737274_000002
)

// DB is the PostgreSQL store.
type DB struct {
	config *pgx.ConnConfig // of the pool's connections, for the listener's own
	pool   *pgxpool.Pool

	// Now returns the current time; tests replace it. It is read once per
	// transaction.
	Now func() time.Time

	// Those waiting for new events, and the connection that listens for
	// them (see NotifyEvents).
	listeners    ivsrt.Wakers
	listenOnce   sync.Once
	listenCtx    context.Context
	listenCancel context.CancelFunc
	listenDone   chan struct{}
	closeOnce    sync.Once

	// The leads TryLead holds, which Close ends.
	leadsMu     sync.Mutex
	leads       map[*lead]struct{}
	leadsClosed bool

	// retries counts transactions run again after a serialization failure
	// or a deadlock.
	retries atomic.Int64

	observer atomic.Pointer[ivsrt.StoreObserver] // see SetObserver
}

// SetObserver has o told how long each write transaction takes, retries
// included.
func (db *DB) SetObserver(o ivsrt.StoreObserver) { db.observer.Store(&o) }

// Open connects to the database dsn names (a URL or keyword/value string,
// as libpq takes) and applies pending migrations. Besides libpq's settings
// the DSN may set pgxpool's: pool_max_conns, the most connections the store
// opens (default: the number of CPUs, at least 4), pool_max_conn_idle_time,
// pool_health_check_period and the like.
func Open(ctx context.Context, dsn string) (*DB, error) {
	config, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres: parse dsn: %w", err)
	}
	if _, ok := config.ConnConfig.RuntimeParams["application_name"]; !ok {
		config.ConnConfig.RuntimeParams["application_name"] = "ivsrt"
	}
	pool, err := pgxpool.NewWithConfig(ctx, config)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db := &DB{config: config.ConnConfig, pool: pool, Now: time.Now, listenDone: make(chan struct{})}
	db.listenCtx, db.listenCancel = context.WithCancel(context.Background())
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return db, nil
}

// Close stops listening for events, gives up the leads held and closes the
// connections.
func (db *DB) Close() error {
	db.closeOnce.Do(func() {
		db.listenCancel()
		// Make sure the listener either never starts or has ended.
		started := true
		db.listenOnce.Do(func() { started = false })
		if started {
			<-db.listenDone
		}
		db.endLeads()
		db.pool.Close()
	})
	return nil
}

// migrate applies, in name order, each embedded migration not yet recorded
// in schema_migrations, each in its own transaction. Nodes starting at once
// take turns: the first applies what is missing, the others then find
// nothing to do.
func (db *DB) migrate(ctx context.Context) error {
	pc, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer pc.Release()
	conn := pc.Conn()
	// A session lock, so that it spans the migrations' transactions.
	if _, err := conn.Exec(ctx, `SELECT pg_advisory_lock($1)`, migrationLock); err != nil {
		return fmt.Errorf("postgres: lock for migrations: %w", err)
	}
	defer func() {
		if _, err := conn.Exec(context.Background(), `SELECT pg_advisory_unlock($1)`, migrationLock); err != nil {
			// Closing the session lets go of the lock (and the pool drops a
			// closed connection).
			closeConn(conn)
		}
	}()
	if _, err := conn.Exec(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (
		name TEXT PRIMARY KEY, applied_at TIMESTAMPTZ NOT NULL)`); err != nil {
		return fmt.Errorf("postgres: create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("postgres: list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := applyMigration(ctx, conn, name); err != nil {
			return err
		}
	}
	return nil
}

func applyMigration(ctx context.Context, conn *pgx.Conn, name string) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("postgres: begin migration %s: %w", name, err)
	}
	defer tx.Rollback(context.Background())
	var applied bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM schema_migrations WHERE name = $1)`, name).Scan(&applied); err != nil {
		return fmt.Errorf("postgres: check migration %s: %w", name, err)
	} else if applied {
		return nil
	}
	body, err := fs.ReadFile(migrationFS, name)
	if err != nil {
		return fmt.Errorf("postgres: read migration %s: %w", name, err)
	}
	// Without arguments the statements go as one simple query, so a file
	// may hold several.
	if _, err := tx.Exec(ctx, string(body)); err != nil {
		return fmt.Errorf("postgres: apply migration %s: %w", name, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES ($1, $2)`,
		name, time.Now().UTC().Truncate(time.Millisecond)); err != nil {
		return fmt.Errorf("postgres: record migration %s: %w", name, err)
	}
	return tx.Commit(ctx)
}

// Tx is a write transaction with the time it is taking place at.
type Tx struct {
	pgx.Tx
	now time.Time

	locked   bool // holds the outbox lock
	appended bool // appended events to the outbox
}

// Retries of a transaction that failed for a serialization failure or a
// deadlock: attempts in all, and the backoff before the first retry, which
// doubles up to maxBackoff.
const (
	maxAttempts  = 10
	firstBackoff = 2 * time.Millisecond
	maxBackoff   = 100 * time.Millisecond
)

// write runs fn in a transaction of the given isolation level and commits
// it. A transaction that fails for a reason that running it again may cure
// (a serialization failure, a deadlock, a connection lost before anything
// was sent) is run again, from the start, a bounded number of times after a
// short, jittered pause: fn must therefore do nothing outside tx that it
// cannot do twice.
func (db *DB) write(ctx context.Context, iso pgx.TxIsoLevel, fn func(tx *Tx) error) (err error) {
	if o := db.observer.Load(); o != nil {
		began := time.Now()
		defer func() {
			outcome := "commit"
			if err != nil {
				// A domain error (not found, conflict) rolled back what had
				// nothing to write; anything else is the database's failure.
				outcome = "error"
				if ivsrt.ErrorCode(err) != ivsrt.EINTERNAL {
					outcome = "rollback"
				}
			}
			(*o).ObserveStoreWrite(time.Since(began), outcome)
		}()
	}
	backoff := firstBackoff
	for attempt := 1; ; attempt++ {
		err := db.attempt(ctx, iso, fn)
		if err == nil || !retryable(err) || attempt == maxAttempts {
			return err
		}
		db.retries.Add(1)
		// Full jitter in [backoff/2, backoff), so that the transactions
		// that collided do not collide again.
		pause := backoff/2 + rand.N(backoff/2)
		backoff = min(2*backoff, maxBackoff)
		t := time.NewTimer(pause)
		select {
		case <-ctx.Done():
			t.Stop()
			return err
		case <-t.C:
		}
	}
}

func (db *DB) attempt(ctx context.Context, iso pgx.TxIsoLevel, fn func(tx *Tx) error) error {
	pc, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer pc.Release()
	ptx, err := pc.Conn().BeginTx(ctx, pgx.TxOptions{IsoLevel: iso})
	if err != nil {
		return fmt.Errorf("postgres: begin: %w", err)
	}
	// After a commit this does nothing; after a failure a connection left
	// in a transaction is closed by the pool when released.
	defer func() {
		rctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		ptx.Rollback(rctx)
	}()
	tx := &Tx{Tx: ptx, now: db.Now().UTC().Truncate(time.Millisecond)}
	if err := fn(tx); err != nil {
		return err
	}
	if err := ptx.Commit(ctx); err != nil {
		return fmt.Errorf("postgres: commit: %w", err)
	}
	if tx.appended {
		db.listeners.Wake()
	}
	return nil
}

// read runs fn with a connection of the pool; each statement sees its own
// snapshot.
func (db *DB) read(ctx context.Context, fn func(conn *pgx.Conn) error) error {
	pc, err := db.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("postgres: connect: %w", err)
	}
	defer pc.Release()
	return fn(pc.Conn())
}

// SQLSTATEs the store acts on.
const (
	codeUniqueViolation      = "23505"
	codeForeignKeyViolation  = "23503"
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeUndefinedObject      = "42704"
)

// retryable reports whether a transaction that failed with err may succeed
// if run again.
func retryable(err error) bool {
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		return pe.Code == codeSerializationFailure || pe.Code == codeDeadlockDetected
	}
	return pgconn.SafeToRetry(err)
}

// translate turns driver errors into domain codes: a unique violation is a
// conflict, a missing row or a missing referenced row is not found;
// everything else stays internal (and may be retried by write).
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "%s not found", what)
	}
	var pe *pgconn.PgError
	if errors.As(err, &pe) {
		switch pe.Code {
		case codeUniqueViolation:
			return ivsrt.Errorf(ivsrt.ECONFLICT, "%s already exists", what)
		}
	}
	return err
}

// isCode reports whether err is a PostgreSQL error with SQLSTATE code.
func isCode(err error, code string) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == code
}

// ms is t as the store keeps it: at millisecond precision, in UTC.
func ms(t time.Time) time.Time { return t.UTC().Truncate(time.Millisecond) }

// nullTime is t for a nullable column: NULL for the zero time.
func nullTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	t = ms(t)
	return &t
}

// fromNull is the inverse of nullTime.
func fromNull(t *time.Time) time.Time {
	if t == nil {
		return time.Time{}
	}
	return t.UTC()
}

// collect reads a page of rows (see storecore.Collect) and closes them.
func collect[T any](rows pgx.Rows, limit int, scan func(pgx.Rows) (T, int64, error)) ([]T, string, error) {
	defer rows.Close()
	return storecore.Collect(rows, limit, scan)
}

// Ping reports whether the database answers: a health check.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres: ping: %w", err)
	}
	return nil
}
