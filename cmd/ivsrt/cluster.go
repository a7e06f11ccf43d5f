package main

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/api"
	"github.com/ivsrt/ivsrt/cluster"
	"github.com/ivsrt/ivsrt/events"
	"github.com/ivsrt/ivsrt/secrets"
	"github.com/ivsrt/ivsrt/store/postgres"
	"github.com/ivsrt/ivsrt/store/sqlite"
)

func isPostgres(dsn string) bool {
	return strings.HasPrefix(dsn, "postgres://") || strings.HasPrefix(dsn, "postgresql://")
}

// redactDSN hides the password of a database URL, for messages.
func redactDSN(dsn string) string {
	u, err := url.Parse(dsn)
	if err != nil {
		return "(unparsable)"
	}
	if _, ok := u.User.Password(); ok {
		u.User = url.UserPassword(u.User.Username(), "…")
	}
	return u.String()
}

// openStore opens the configured store and, with --cluster-nats, joins
// NATS as a node (started later, once the media plane exists).
func (m *Main) openStore(ctx context.Context) error {
	c := m.Config
	if !isPostgres(c.Store) {
		db, err := sqlite.Open(ctx, filepath.Join(c.DataDir, "ivsrt.db"))
		if err != nil {
			return err
		}
		m.DB = db
		return nil
	}
	db, err := postgres.Open(ctx, c.Store)
	if err != nil {
		return fmt.Errorf("--store %s: %w", redactDSN(c.Store), err)
	}
	m.DB = db
	return nil
}

// secrets returns the keys a server signs and checks with: a cluster's
// nodes share theirs through the store, a single server keeps them in its
// data folder.
func (m *Main) secrets(ctx context.Context) (*secrets.Set, error) {
	c := m.Config
	var given *api.Credential
	if c.AccessKeyID != "" {
		given = &api.Credential{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey}
	}
	if cs, shared := m.DB.(ivsrt.ClusterStore); c.ClusterNATS != "" && shared {
		return secrets.Shared(ctx, cs, given)
	}
	return secrets.Local(c.DataDir, given)
}

// joinCluster makes this server a node of the cluster: it starts the node
// with the media plane, and runs the event relay whenever this node holds
// the lead for it.
func (m *Main) joinCluster(ctx context.Context) error {
	if err := m.Node.Start(ctx, m.SFU); errors.Is(err, cluster.ErrNodeIDInUse) {
		return fmt.Errorf("--node-id: %w", err)
	} else if err != nil {
		return err
	}
	// Replicas here of publishers elsewhere are fed from there.
	m.SFU.SetRemoteFeeds(m.Node)
	m.delivery = &deliveryControl{store: m.DB}
	m.Node.Lead(ctx, "event-relay", func(ctx context.Context) (func(), error) {
		// The relay belongs to the lead, not to the server: Close stops it
		// through the node.
		relay, sinks, err := m.startRelay(ctx)
		if err != nil {
			return nil, err
		}
		m.delivery.set(relay)
		return func() {
			m.delivery.set(nil)
			relay.Close()
			sinks.close()
		}, nil
	})
	return nil
}

// newNode creates the cluster node (before the media plane, which names
// its sessions after it).
func (m *Main) newNode(issuer ivsrt.TokenIssuer, nodeURL string) error {
	store, ok := m.DB.(cluster.Store)
	if !ok {
		return fmt.Errorf("--cluster-nats: the store cannot be shared by a cluster")
	}
	c := m.Config
	node, err := cluster.New(cluster.Config{NodeID: c.NodeID, URL: nodeURL, PublicURL: c.PublicURL, NATSURL: c.ClusterNATS,
		LeaseTTL: c.ClusterLeaseTTL, HeartbeatInterval: c.ClusterHeartbeat, DeadAfter: c.ClusterDeadAfter,
		MaxSubscriptions: c.NodeMaxSubscriptions},
		store, issuer, cluster.WithLogger(m.Logger))
	if err != nil {
		return err
	}
	m.Node = node
	return nil
}

// deliveryControl shows and mends event delivery on every node of a
// cluster, though the relay runs on one: where it runs, it is the relay;
// elsewhere redrives go to the store, and the relay's node picks them up
// when it next reads its queues back.
type deliveryControl struct {
	store ivsrt.DeliveryStore

	mu    sync.Mutex
	relay *events.Relay
}

func (d *deliveryControl) set(r *events.Relay) {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.relay = r
}

func (d *deliveryControl) Status() []events.SinkStatus {
	d.mu.Lock()
	r := d.relay
	d.mu.Unlock()
	if r == nil {
		return []events.SinkStatus{}
	}
	return r.Status()
}

func (d *deliveryControl) Redrive(ctx context.Context, sink, eventID string) error {
	d.mu.Lock()
	r := d.relay
	d.mu.Unlock()
	if r != nil {
		return r.Redrive(ctx, sink, eventID)
	}
	_, err := d.store.RedriveDeadLetter(ctx, sink, eventID, time.Now())
	return err
}
