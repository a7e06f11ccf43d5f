// Package sqlite stores ivsrt's state in an embedded SQLite database
// (modernc.org/sqlite, pure Go): one file in the data folder, WAL journal,
// every commit synced before the API answers.
package sqlite

import (
	"context"
	"database/sql"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivsrt/ivsrt"
	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"
)

//go:embed migrations/*.sql
var migrationFS embed.FS

var _ ivsrt.Store = (*DB)(nil)

// DB is the SQLite store. Writes go through one connection, so that SQLite's
// single writer never makes callers spin on SQLITE_BUSY; reads use a pool
// that runs beside it thanks to WAL.
type DB struct {
	path  string
	write *sql.DB
	read  *sql.DB

	// Statements of the hot paths, by query text, prepared on each pool so
	// that SQLite parses them once per connection rather than on every call.
	writeStmts map[string]*sql.Stmt
	readStmts  map[string]*sql.Stmt

	// Participant tokens go through one writer that commits them in
	// groups (see CreateParticipantToken).
	tokenWrites     chan *tokenWrite
	tokenWriterDone chan struct{}
	closing         chan struct{}
	closeOnce       sync.Once

	// Now returns the current time; tests replace it. It is read once per
	// transaction.
	Now func() time.Time

	// Those waiting for new events (see NotifyEvents).
	listeners ivsrt.Wakers

	observer atomic.Pointer[ivsrt.StoreObserver] // see SetObserver
}

// SetObserver has o told how long each write transaction takes.
func (db *DB) SetObserver(o ivsrt.StoreObserver) { db.observer.Store(&o) }

// observe tells the observer, if any, of a write transaction that began
// at start.
func (db *DB) observe(start time.Time, outcome string) {
	if o := db.observer.Load(); o != nil {
		(*o).ObserveStoreWrite(time.Since(start), outcome)
	}
}

// NotifyEvents implements ivsrt.EventNotifier.
func (db *DB) NotifyEvents() (<-chan struct{}, func()) { return db.listeners.Add() }

// Path returns the path of the database file.
func (db *DB) Path() string { return db.path }

// Open opens (creating if needed) the database at path and applies pending
// migrations.
func Open(ctx context.Context, path string) (*DB, error) {
	db := &DB{path: path, Now: time.Now, closing: make(chan struct{})}
	var err error
	if db.write, err = openPool(path, 1, "immediate"); err != nil {
		return nil, err
	}
	if db.read, err = openPool(path, max(4, 2*runtime.GOMAXPROCS(0)), "deferred"); err != nil {
		db.write.Close()
		return nil, err
	}
	if err := db.migrate(ctx); err != nil {
		db.Close()
		return nil, err
	}
	if db.writeStmts, err = prepare(ctx, db.write, writeQueries); err != nil {
		db.Close()
		return nil, err
	}
	if db.readStmts, err = prepare(ctx, db.read, readQueries); err != nil {
		db.Close()
		return nil, err
	}
	db.tokenWrites = make(chan *tokenWrite)
	db.tokenWriterDone = make(chan struct{})
	go db.writeTokens()
	return db, nil
}

// The queries prepared on each pool. Tx's query methods use the prepared
// statement when given one of these texts exactly.
var (
	writeQueries = []string{qStageExists, qStorageConfigurationExists, qInsertToken, qInsertOutbox, qInsertDelivery, qMoveCursor, qDeleteDelivery, qRetryDelivery}
	readQueries  = []string{qGetStage, qListStages, qReadEvent}
)

func prepare(ctx context.Context, pool *sql.DB, queries []string) (map[string]*sql.Stmt, error) {
	stmts := make(map[string]*sql.Stmt, len(queries))
	for _, q := range queries {
		st, err := pool.PrepareContext(ctx, q)
		if err != nil {
			for _, st := range stmts {
				st.Close()
			}
			return nil, fmt.Errorf("prepare %q: %w", q, err)
		}
		stmts[q] = st
	}
	return stmts, nil
}

func openPool(path string, conns int, txlock string) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "journal_mode(WAL)")
	// FULL: a commit is on disk before the API acknowledges it.
	q.Add("_pragma", "synchronous(FULL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Add("_pragma", "busy_timeout(10000)")
	q.Set("_txlock", txlock)
	pool, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open sqlite %s: %w", path, err)
	}
	pool.SetMaxOpenConns(conns)
	pool.SetMaxIdleConns(conns)
	pool.SetConnMaxLifetime(0)
	return pool, nil
}

// Close closes the database.
func (db *DB) Close() error {
	db.closeOnce.Do(func() { close(db.closing) })
	if db.tokenWriterDone != nil {
		<-db.tokenWriterDone
	}
	var errs []error
	for _, stmts := range []map[string]*sql.Stmt{db.writeStmts, db.readStmts} {
		for _, st := range stmts {
			errs = append(errs, st.Close())
		}
	}
	return errors.Join(append(errs, db.read.Close(), db.write.Close())...)
}

// migrate applies, in name order, each embedded migration not yet recorded
// in schema_migrations, each in its own transaction.
func (db *DB) migrate(ctx context.Context) error {
	if _, err := db.write.ExecContext(ctx,
		`CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT PRIMARY KEY, applied_at INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("create schema_migrations: %w", err)
	}
	names, err := fs.Glob(migrationFS, "migrations/*.sql")
	if err != nil {
		return fmt.Errorf("list migrations: %w", err)
	}
	sort.Strings(names)
	for _, name := range names {
		if err := db.applyMigration(ctx, name); err != nil {
			return err
		}
	}
	return nil
}

func (db *DB) applyMigration(ctx context.Context, name string) error {
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("begin migration %s: %w", name, err)
	}
	defer tx.Rollback()
	var n int
	if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM schema_migrations WHERE name = ?`, name).Scan(&n); err != nil {
		return fmt.Errorf("check migration %s: %w", name, err)
	} else if n > 0 {
		return nil
	}
	body, err := fs.ReadFile(migrationFS, name)
	if err != nil {
		return fmt.Errorf("read migration %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return fmt.Errorf("apply migration %s: %w", name, err)
	}
	if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (name, applied_at) VALUES (?, ?)`,
		name, time.Now().UnixMilli()); err != nil {
		return fmt.Errorf("record migration %s: %w", name, err)
	}
	return tx.Commit()
}

// Tx is a write transaction with the time it is taking place at.
type Tx struct {
	*sql.Tx
	now   time.Time
	stmts map[string]*sql.Stmt // prepared on the transaction's pool

	db       *DB
	appended bool      // events were appended to the outbox
	write    bool      // a write transaction: timed
	began    time.Time // when it began
	ended    bool
}

// Commit commits the transaction and, if it appended events, tells those
// waiting for them.
func (tx *Tx) Commit() error {
	err := tx.Tx.Commit()
	if err != nil {
		tx.end("error")
	} else {
		tx.end("commit")
	}
	if err != nil {
		return err
	}
	if tx.appended {
		tx.db.listeners.Wake()
	}
	return nil
}

// Rollback rolls the transaction back, if it was not committed.
func (tx *Tx) Rollback() error {
	err := tx.Tx.Rollback()
	if !errors.Is(err, sql.ErrTxDone) {
		tx.end("rollback")
	}
	return err
}

func (tx *Tx) end(outcome string) {
	if tx.write && !tx.ended {
		tx.ended = true
		tx.db.observe(tx.began, outcome)
	}
}

func (db *DB) beginWrite(ctx context.Context) (*Tx, error) {
	began := time.Now()
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		db.observe(began, "error")
		return nil, fmt.Errorf("begin: %w", err)
	}
	return &Tx{Tx: tx, now: db.Now().UTC().Truncate(time.Millisecond), stmts: db.writeStmts, db: db, write: true, began: began}, nil
}

func (db *DB) beginRead(ctx context.Context) (*Tx, error) {
	tx, err := db.read.BeginTx(ctx, &sql.TxOptions{ReadOnly: true})
	if err != nil {
		return nil, fmt.Errorf("begin read: %w", err)
	}
	return &Tx{Tx: tx, now: db.Now().UTC().Truncate(time.Millisecond), stmts: db.readStmts, db: db}, nil
}

// ExecContext, QueryContext and QueryRowContext run query as *sql.Tx does,
// through its prepared statement if it has one.
func (tx *Tx) ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if st, ok := tx.stmts[query]; ok {
		return tx.StmtContext(ctx, st).ExecContext(ctx, args...)
	}
	return tx.Tx.ExecContext(ctx, query, args...)
}

func (tx *Tx) QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if st, ok := tx.stmts[query]; ok {
		return tx.StmtContext(ctx, st).QueryContext(ctx, args...)
	}
	return tx.Tx.QueryContext(ctx, query, args...)
}

func (tx *Tx) QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row {
	if st, ok := tx.stmts[query]; ok {
		return tx.StmtContext(ctx, st).QueryRowContext(ctx, args...)
	}
	return tx.Tx.QueryRowContext(ctx, query, args...)
}

// translate turns driver errors into domain codes: a constraint violation
// is a conflict, a missing row is not found; everything else stays internal.
func translate(err error, what string) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "%s not found", what)
	}
	var se *sqlite.Error
	if errors.As(err, &se) {
		switch se.Code() {
		case sqlite3.SQLITE_CONSTRAINT_UNIQUE, sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY:
			return ivsrt.Errorf(ivsrt.ECONFLICT, "%s already exists", what)
		}
	}
	return err
}

func millis(t time.Time) int64 { return t.UnixMilli() }

func fromMillis(ms int64) time.Time { return time.UnixMilli(ms).UTC() }

// millisOrNull is t for a nullable time column: NULL for the zero time.
func millisOrNull(t time.Time) sql.NullInt64 {
	if t.IsZero() {
		return sql.NullInt64{}
	}
	return sql.NullInt64{Int64: millis(t), Valid: true}
}

func nullMillis(ms sql.NullInt64) time.Time {
	if !ms.Valid {
		return time.Time{}
	}
	return fromMillis(ms.Int64)
}

// Ping reports whether the database can be read and written: a health
// check. It writes nothing.
func (db *DB) Ping(ctx context.Context) error {
	if err := db.read.QueryRowContext(ctx, `SELECT 1`).Scan(new(int)); err != nil {
		return fmt.Errorf("sqlite: read %s: %w", db.path, err)
	}
	// The write connection is the one whose loss matters: BEGIN IMMEDIATE
	// takes the write lock, so this also fails while another process
	// holds the database locked.
	tx, err := db.write.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("sqlite: write %s: %w", db.path, err)
	}
	return tx.Rollback()
}
