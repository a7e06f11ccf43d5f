package postgres

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"
)

// NotifyEvents implements ivsrt.EventNotifier. Listeners wake when this
// store commits events, and when any other node sharing the database does:
// the first call opens a connection of its own that LISTENs for the NOTIFY
// appendEvents sends.
func (db *DB) NotifyEvents() (<-chan struct{}, func()) {
	db.listenOnce.Do(func() { go db.listen(db.listenCtx) })
	return db.listeners.Add()
}

// listen holds a connection that LISTENs for new events until ctx ends,
// reconnecting after a failure. Each time it starts listening it wakes
// everyone, since notifications sent while it was not listening are lost.
func (db *DB) listen(ctx context.Context) {
	defer close(db.listenDone)
	backoff := 100 * time.Millisecond
	for {
		if db.listenOnConn(ctx) {
			backoff = 100 * time.Millisecond
		}
		if ctx.Err() != nil {
			return
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		backoff = min(2*backoff, 5*time.Second)
	}
}

// listenOnConn connects, listens and wakes listeners until the connection
// fails or ctx ends. It reports whether it got as far as listening.
func (db *DB) listenOnConn(ctx context.Context) (listened bool) {
	conn, err := pgx.ConnectConfig(ctx, db.config)
	if err != nil {
		return false
	}
	defer closeConn(conn)
	if _, err := conn.Exec(ctx, `LISTEN `+eventsChannel); err != nil {
		return false
	}
	db.listeners.Wake()
	for {
		if _, err := conn.WaitForNotification(ctx); err != nil {
			return true
		}
		db.listeners.Wake()
	}
}
