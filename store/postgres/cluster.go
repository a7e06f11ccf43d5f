package postgres

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/ivsrt/ivsrt"
)

var _ ivsrt.ClusterStore = (*DB)(nil)

// Heartbeat implements ivsrt.ClusterStore. It sets node.HeartbeatAt to the
// time it recorded.
func (db *DB) Heartbeat(ctx context.Context, node *ivsrt.Node) error {
	var at time.Time
	err := db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		at = tx.now
		_, err := tx.Exec(ctx, `INSERT INTO node (id, url, participants, subscriptions, cpu, started_at, heartbeat_at, draining)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
			ON CONFLICT (id) DO UPDATE SET url = EXCLUDED.url, participants = EXCLUDED.participants,
				subscriptions = EXCLUDED.subscriptions, cpu = EXCLUDED.cpu, started_at = EXCLUDED.started_at,
				heartbeat_at = EXCLUDED.heartbeat_at, draining = EXCLUDED.draining`,
			node.ID, node.URL, node.Participants, node.Subscriptions, node.CPU, ms(node.StartedAt), tx.now, node.Draining)
		return err
	})
	if err != nil {
		return fmt.Errorf("heartbeat of node %s: %w", node.ID, err)
	}
	node.HeartbeatAt = at
	return nil
}

// ListNodes implements ivsrt.ClusterStore.
func (db *DB) ListNodes(ctx context.Context, aliveSince time.Time) ([]*ivsrt.Node, error) {
	var nodes []*ivsrt.Node
	err := db.read(ctx, func(conn *pgx.Conn) error {
		rows, err := conn.Query(ctx, `SELECT id, url, participants, subscriptions, cpu, started_at, heartbeat_at, draining
			FROM node WHERE heartbeat_at >= $1 ORDER BY id`, ms(aliveSince))
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			n := &ivsrt.Node{}
			if err := rows.Scan(&n.ID, &n.URL, &n.Participants, &n.Subscriptions, &n.CPU, &n.StartedAt, &n.HeartbeatAt, &n.Draining); err != nil {
				return err
			}
			n.StartedAt, n.HeartbeatAt = n.StartedAt.UTC(), n.HeartbeatAt.UTC()
			nodes = append(nodes, n)
		}
		return rows.Err()
	})
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return nodes, nil
}

// maxClaimRounds bounds how often ClaimStageHost looks again for a host
// that vanished between its claim and its read.
const maxClaimRounds = 10

// ClaimStageHost implements ivsrt.ClusterStore. The claim is one statement:
// of nodes claiming the same stage at once, the first to insert or update
// the row wins, and the others, whose update finds a live lease of another
// node, read the winner's row.
func (db *DB) ClaimStageHost(ctx context.Context, stage ivsrt.StageARN, nodeID string, leaseUntil time.Time) (*ivsrt.StageHost, error) {
	var host *ivsrt.StageHost
	err := db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		for range maxClaimRounds {
			var err error
			host, err = scanStageHost(tx.QueryRow(ctx, `INSERT INTO stage_host (stage_arn, node_id, lease_until)
				VALUES ($1, $2, $3)
				ON CONFLICT (stage_arn) DO UPDATE SET node_id = EXCLUDED.node_id, lease_until = EXCLUDED.lease_until
				WHERE stage_host.lease_until < $4 OR stage_host.node_id = EXCLUDED.node_id
				RETURNING `+stageHostColumns, string(stage), nodeID, ms(leaseUntil), tx.now))
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
			// Another node holds a live lease. Each statement of a READ
			// COMMITTED transaction sees what committed before it, so this
			// finds that node's row unless it was released meanwhile.
			host, err = scanStageHost(tx.QueryRow(ctx, `SELECT `+stageHostColumns+`
				FROM stage_host WHERE stage_arn = $1`, string(stage)))
			if !errors.Is(err, pgx.ErrNoRows) {
				return err
			}
		}
		return fmt.Errorf("host of stage %s kept changing", stage)
	})
	if err != nil {
		return nil, fmt.Errorf("claim stage %s for node %s: %w", stage, nodeID, err)
	}
	return host, nil
}

// GetStageHost implements ivsrt.ClusterStore.
func (db *DB) GetStageHost(ctx context.Context, stage ivsrt.StageARN) (*ivsrt.StageHost, error) {
	var host *ivsrt.StageHost
	err := db.read(ctx, func(conn *pgx.Conn) error {
		var err error
		host, err = scanStageHost(conn.QueryRow(ctx, `SELECT `+stageHostColumns+`
			FROM stage_host WHERE stage_arn = $1`, string(stage)))
		return err
	})
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, ivsrt.Errorf(ivsrt.ENOTFOUND, "stage %s has no host", stage)
	} else if err != nil {
		return nil, fmt.Errorf("read host of stage %s: %w", stage, err)
	}
	return host, nil
}

// RenewStageHosts implements ivsrt.ClusterStore. A lease that ran out is
// renewed all the same while no other node has taken the stage over.
func (db *DB) RenewStageHosts(ctx context.Context, nodeID string, stages []ivsrt.StageARN, leaseUntil time.Time) ([]ivsrt.StageARN, error) {
	if len(stages) == 0 {
		return nil, nil
	}
	arns := make([]string, len(stages))
	for i, s := range stages {
		arns[i] = string(s)
	}
	var renewed []string
	err := db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		rows, err := tx.Query(ctx, `UPDATE stage_host SET lease_until = $3
			WHERE node_id = $1 AND stage_arn = ANY ($2::text[]) RETURNING stage_arn`,
			nodeID, arns, ms(leaseUntil))
		if err != nil {
			return err
		}
		renewed, err = pgx.CollectRows(rows, pgx.RowTo[string])
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("renew leases of node %s: %w", nodeID, err)
	}
	var lost []ivsrt.StageARN
	for _, s := range stages {
		if !slices.Contains(renewed, string(s)) {
			lost = append(lost, s)
		}
	}
	return lost, nil
}

// ReleaseStageHost implements ivsrt.ClusterStore.
func (db *DB) ReleaseStageHost(ctx context.Context, stage ivsrt.StageARN, nodeID string) error {
	err := db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		_, err := tx.Exec(ctx, `DELETE FROM stage_host WHERE stage_arn = $1 AND node_id = $2`, string(stage), nodeID)
		return err
	})
	if err != nil {
		return fmt.Errorf("release stage %s of node %s: %w", stage, nodeID, err)
	}
	return nil
}

// TakeOrphanedStages implements ivsrt.ClusterStore. It is one DELETE: of
// two nodes taking the same row at once, the second waits for the first
// and then finds the row gone, so it does not return it.
func (db *DB) TakeOrphanedStages(ctx context.Context, now, deadBefore time.Time) ([]*ivsrt.StageHost, error) {
	var taken []*ivsrt.StageHost
	err := db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM stage_host
			WHERE lease_until < $1 AND node_id NOT IN (SELECT id FROM node WHERE heartbeat_at >= $2)
			RETURNING `+stageHostColumns, ms(now), ms(deadBefore))
		if err != nil {
			return err
		}
		taken, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*ivsrt.StageHost, error) {
			return scanStageHost(row)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("take orphaned stages: %w", err)
	}
	slices.SortFunc(taken, func(a, b *ivsrt.StageHost) int { return strings.Compare(string(a.StageARN), string(b.StageARN)) })
	return taken, nil
}

// TakeNodeStages implements ivsrt.ClusterStore. Like TakeOrphanedStages it
// is one DELETE, so each placement is returned once.
func (db *DB) TakeNodeStages(ctx context.Context, nodeID string) ([]*ivsrt.StageHost, error) {
	var taken []*ivsrt.StageHost
	err := db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		rows, err := tx.Query(ctx, `DELETE FROM stage_host WHERE node_id = $1 RETURNING `+stageHostColumns, nodeID)
		if err != nil {
			return err
		}
		taken, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (*ivsrt.StageHost, error) {
			return scanStageHost(row)
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("take stages of node %s: %w", nodeID, err)
	}
	slices.SortFunc(taken, func(a, b *ivsrt.StageHost) int { return strings.Compare(string(a.StageARN), string(b.StageARN)) })
	return taken, nil
}

const stageHostColumns = `stage_arn, node_id, lease_until`

func scanStageHost(row pgx.Row) (*ivsrt.StageHost, error) {
	h := &ivsrt.StageHost{}
	if err := row.Scan(&h.StageARN, &h.NodeID, &h.LeaseUntil); err != nil {
		return nil, err
	}
	h.LeaseUntil = h.LeaseUntil.UTC()
	return h, nil
}

// SharedSecret implements ivsrt.ClusterStore. create runs outside any
// transaction, only when the secret is not stored yet; of two nodes storing
// one at once, the first to commit wins and the other returns its value.
func (db *DB) SharedSecret(ctx context.Context, name string, create func() ([]byte, error)) ([]byte, error) {
	var value []byte
	err := db.read(ctx, func(conn *pgx.Conn) error {
		return conn.QueryRow(ctx, `SELECT value FROM shared_secret WHERE name = $1`, name).Scan(&value)
	})
	if err == nil {
		return value, nil
	} else if !errors.Is(err, pgx.ErrNoRows) {
		return nil, fmt.Errorf("read secret %s: %w", name, err)
	}
	fresh, err := create()
	if err != nil {
		return nil, fmt.Errorf("create secret %s: %w", name, err)
	}
	if fresh == nil {
		fresh = []byte{} // the column is NOT NULL
	}
	err = db.write(ctx, pgx.ReadCommitted, func(tx *Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO shared_secret (name, value, created_at) VALUES ($1, $2, $3)
			ON CONFLICT (name) DO NOTHING`, name, fresh, tx.now); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `SELECT value FROM shared_secret WHERE name = $1`, name).Scan(&value)
	})
	if err != nil {
		return nil, fmt.Errorf("store secret %s: %w", name, err)
	}
	return value, nil
}

// How a held lead is watched: its connection is pinged every
// leadCheckEvery, and a ping that has not come back within leadPingTimeout
// ends the lead. The server ends the session (and so lets go of the lock)
// once it has been idle for leadIdleTimeout, which is longer than the two
// together: a holder cut off from the server learns that it lost the lead
// before another node can take it.
const (
	leadCheckEvery  = 2 * time.Second
	leadPingTimeout = 3 * time.Second
	leadIdleTimeout = 10 * time.Second
)

// lead is a lock TryLead holds: a session advisory lock on a connection of
// its own, which only the goroutine watching it uses.
type lead struct {
	db   *DB
	conn *pgx.Conn
	key  int64

	lost     chan struct{}
	lostOnce sync.Once
	stop     chan struct{} // closed to end the lead
	stopOnce sync.Once
	done     chan struct{} // closed when the watcher has let go of the lock
}

// leadKey is the advisory lock key of the lead named name: a 64-bit FNV-1a
// hash of it. It shares the key space of the locks db.go names, whose keys
// a hash is all but certain to miss.
func leadKey(name string) int64 {
	h := fnv.New64a()
	h.Write([]byte("ivsrt:lead:" + name))
	return int64(h.Sum64())
}

// TryLead implements ivsrt.ClusterStore. The lock is a session advisory
// lock on a connection of its own, named "ivsrt-lead-<name>" in
// pg_stat_activity. lost is closed when that connection fails or the DB is
// closed, not when release is called.
func (db *DB) TryLead(ctx context.Context, name string) (bool, <-chan struct{}, func(), error) {
	config := db.config.Copy()
	config.RuntimeParams["application_name"] = "ivsrt-lead-" + name
	conn, err := pgx.ConnectConfig(ctx, config)
	if err != nil {
		return false, nil, nil, fmt.Errorf("lead %s: connect: %w", name, err)
	}
	// A server too old to know idle_session_timeout (before PostgreSQL 14)
	// lets go of the lock only when it finds the connection dead.
	if _, err := conn.Exec(ctx, `SET idle_session_timeout = `+fmt.Sprint(leadIdleTimeout.Milliseconds())); err != nil && !isCode(err, codeUndefinedObject) {
		closeConn(conn)
		return false, nil, nil, fmt.Errorf("lead %s: set idle timeout: %w", name, err)
	}
	key := leadKey(name)
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock($1)`, key).Scan(&ok); err != nil {
		closeConn(conn)
		return false, nil, nil, fmt.Errorf("lead %s: lock: %w", name, err)
	}
	if !ok {
		closeConn(conn)
		return false, nil, nil, nil
	}
	l := &lead{db: db, conn: conn, key: key, lost: make(chan struct{}), stop: make(chan struct{}), done: make(chan struct{})}
	db.leadsMu.Lock()
	if db.leadsClosed {
		db.leadsMu.Unlock()
		closeConn(conn)
		return false, nil, nil, fmt.Errorf("lead %s: the store is closed", name)
	}
	if db.leads == nil {
		db.leads = map[*lead]struct{}{}
	}
	db.leads[l] = struct{}{}
	db.leadsMu.Unlock()
	go l.watch()
	return true, l.lost, l.release, nil
}

// watch pings the lead's connection until a ping fails, and then closes
// lost, or until the lead is stopped, and then unlocks. Either way it
// closes the connection.
func (l *lead) watch() {
	defer close(l.done)
	defer closeConn(l.conn)
	t := time.NewTicker(leadCheckEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			// Unlock rather than only disconnect, so that the lock is free
			// when release returns: the server ends a closed session a
			// moment later.
			ctx, cancel := context.WithTimeout(context.Background(), leadPingTimeout)
			l.conn.Exec(ctx, `SELECT pg_advisory_unlock($1)`, l.key)
			cancel()
			return
		case <-t.C:
			ctx, cancel := context.WithTimeout(context.Background(), leadPingTimeout)
			err := l.conn.Ping(ctx)
			cancel()
			if err != nil {
				l.db.forgetLead(l)
				l.markLost()
				return
			}
		}
	}
}

// release gives the lead up and waits until it has. It may be called more
// than once.
func (l *lead) release() {
	l.db.forgetLead(l)
	l.end()
}

// end stops the watcher and waits for it.
func (l *lead) end() {
	l.stopOnce.Do(func() { close(l.stop) })
	<-l.done
}

func (l *lead) markLost() { l.lostOnce.Do(func() { close(l.lost) }) }

func (db *DB) forgetLead(l *lead) {
	db.leadsMu.Lock()
	delete(db.leads, l)
	db.leadsMu.Unlock()
}

// endLeads gives up every lead held, as lost ones, and refuses new ones.
func (db *DB) endLeads() {
	db.leadsMu.Lock()
	leads := db.leads
	db.leads, db.leadsClosed = nil, true
	db.leadsMu.Unlock()
	for l := range leads {
		l.end()
		l.markLost()
	}
}
