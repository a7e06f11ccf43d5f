package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/api"
	"github.com/ivsrt/ivsrt/cluster"
	"github.com/ivsrt/ivsrt/events"
	"github.com/ivsrt/ivsrt/store/postgres"
	"github.com/ivsrt/ivsrt/store/sqlite"
	"github.com/ivsrt/ivsrt/token"
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

// serverSecrets are the keys a server signs and checks with. A cluster's
// nodes must hold the same ones, so there they live in the shared store;
// a single server keeps them in its data folder.
type serverSecrets struct {
	credentials []api.Credential
	pageKey     []byte
	signingKey  *ecdsa.PrivateKey
}

func (m *Main) secrets(ctx context.Context) (*serverSecrets, error) {
	c := m.Config
	cs, shared := m.DB.(ivsrt.ClusterStore)
	if c.ClusterNATS == "" || !shared {
		creds, err := m.credentials()
		if err != nil {
			return nil, err
		}
		pageKey, err := loadOrCreateSecret(filepath.Join(c.DataDir, "pagination.key"), 32)
		if err != nil {
			return nil, err
		}
		signingKey, err := token.LoadOrCreateKey(filepath.Join(c.DataDir, "token-signing-key.pem"))
		if err != nil {
			return nil, err
		}
		return &serverSecrets{creds, pageKey, signingKey}, nil
	}

	s := &serverSecrets{}
	var err error
	if s.pageKey, err = cs.SharedSecret(ctx, "pagination-key", func() ([]byte, error) {
		b := make([]byte, 32)
		_, err := rand.Read(b)
		return b, err
	}); err != nil {
		return nil, fmt.Errorf("shared pagination key: %w", err)
	}
	pem, err := cs.SharedSecret(ctx, "token-signing-key", token.GenerateKeyPEM)
	if err != nil {
		return nil, fmt.Errorf("shared token signing key: %w", err)
	}
	if s.signingKey, err = token.ParseKeyPEM(pem); err != nil {
		return nil, err
	}
	if c.AccessKeyID != "" {
		s.credentials = []api.Credential{{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey}}
		return s, nil
	}
	generated := false
	data, err := cs.SharedSecret(ctx, "credentials", func() ([]byte, error) {
		generated = true
		return json.Marshal(newCredentials())
	})
	if err != nil {
		return nil, fmt.Errorf("shared credentials: %w", err)
	}
	var sc storedCredentials
	if err := json.Unmarshal(data, &sc); err != nil || sc.AccessKeyID == "" {
		return nil, fmt.Errorf("the cluster's stored credentials are damaged")
	}
	if generated {
		fmt.Fprintf(os.Stderr, "ivsrt: generated the cluster's API credentials (kept in the store):\n"+
			"  export AWS_ACCESS_KEY_ID=%s\n  export AWS_SECRET_ACCESS_KEY=%s\n", sc.AccessKeyID, sc.SecretAccessKey)
	}
	s.credentials = []api.Credential{{AccessKeyID: sc.AccessKeyID, SecretAccessKey: sc.SecretAccessKey}}
	return s, nil
}

// joinCluster makes this server a node of the cluster: it starts the node
// with the media plane, and runs the event relay whenever this node holds
// the lead for it.
func (m *Main) joinCluster(ctx context.Context) error {
	if err := m.Node.Start(ctx, m.SFU); err != nil {
		return err
	}
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
	node, err := cluster.New(cluster.Config{NodeID: c.NodeID, URL: nodeURL, NATSURL: c.ClusterNATS,
		LeaseTTL: c.ClusterLeaseTTL, HeartbeatInterval: c.ClusterHeartbeat, DeadAfter: c.ClusterDeadAfter},
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
