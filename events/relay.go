package events

import (
	"context"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/ivsrt/ivsrt"
)

// RelayStore is what the relay needs of the store.
type RelayStore interface {
	ivsrt.EventStream
	ivsrt.DeliveryStore
}

// Defaults of RelayConfig.
const (
	DefaultRetention      = 7 * 24 * time.Hour
	DefaultPruneInterval  = time.Minute
	DefaultResyncInterval = 10 * time.Second
)

// RelayConfig configures a Relay.
type RelayConfig struct {
	Region    string // the envelopes' region
	AccountID string // the envelopes' account

	PollInterval time.Duration // how often the store is read for new events when it cannot tell
	BatchSize    int           // most events taken in at once

	// Retention is how long events are kept once every sink is done with
	// them (the SSE stream replays from what is kept). Zero keeps
	// DefaultRetention; negative keeps events for ever.
	Retention     time.Duration
	PruneInterval time.Duration

	// ResyncInterval is how often each sink reads its queue back from the
	// store, to pick up what was put there from elsewhere (a dead letter
	// redriven through another node of a cluster).
	ResyncInterval time.Duration
}

// Relay delivers the event stream to its sinks, each from its own durable
// queue (see ivsrt.DeliveryStore), and prunes the stream of old events.
type Relay struct {
	store RelayStore
	cfg   RelayConfig
	log   *slog.Logger
	now   func() time.Time
	sinks []*sink

	cancel context.CancelFunc
	wg     sync.WaitGroup

	delivered DeliveryObserver
}

// DeliveryObserver is told of every event a sink delivered: how long it
// took from entering the sink's queue to the receiver's acceptance, tries
// and waits between them included. It must not block.
type DeliveryObserver interface {
	ObserveDelivery(sink string, lag time.Duration)
}

// WithDeliveryObserver has o told of every delivery.
func WithDeliveryObserver(o DeliveryObserver) RelayOption { return func(r *Relay) { r.delivered = o } }

// RelayOption configures a Relay.
type RelayOption func(*Relay)

// WithRelayLogger sets the logger (default: discard).
func WithRelayLogger(l *slog.Logger) RelayOption { return func(r *Relay) { r.log = l } }

// WithClock sets where the relay reads the time (default time.Now).
func WithClock(now func() time.Time) RelayOption { return func(r *Relay) { r.now = now } }

// NewRelay returns a relay of store's events to sinks. Start starts it.
func NewRelay(store RelayStore, cfg RelayConfig, sinks []SinkConfig, opts ...RelayOption) (*Relay, error) {
	r := &Relay{store: store, cfg: cfg, log: slog.New(slog.DiscardHandler), now: time.Now}
	for _, o := range opts {
		o(r)
	}
	if r.cfg.PollInterval <= 0 {
		r.cfg.PollInterval = DefaultPollInterval
	}
	if r.cfg.BatchSize <= 0 {
		r.cfg.BatchSize = DefaultBatchSize
	}
	if r.cfg.Retention == 0 {
		r.cfg.Retention = DefaultRetention
	}
	if r.cfg.PruneInterval <= 0 {
		r.cfg.PruneInterval = DefaultPruneInterval
	}
	if r.cfg.ResyncInterval <= 0 {
		r.cfg.ResyncInterval = DefaultResyncInterval
	}
	names := map[string]bool{}
	for _, c := range sinks {
		if c.Name == "" || c.Sender == nil {
			return nil, fmt.Errorf("event sink: a name and a sender are required")
		}
		if names[c.Name] {
			return nil, fmt.Errorf("event sink %q: the name is used twice", c.Name)
		}
		names[c.Name] = true
		c.setDefaults()
		r.sinks = append(r.sinks, &sink{relay: r, cfg: c, log: r.log.With("sink", c.Name)})
	}
	return r, nil
}

// Start loads the sinks' queues and starts delivering. It returns once
// every sink has its place in the stream, so that the events written after
// Start returns reach every sink.
func (r *Relay) Start(ctx context.Context) error {
	for _, s := range r.sinks {
		if err := s.load(ctx); err != nil {
			return fmt.Errorf("event sink %s: %w", s.cfg.Name, err)
		}
	}
	ctx, r.cancel = context.WithCancel(context.WithoutCancel(ctx))
	for _, s := range r.sinks {
		r.wg.Go(func() { s.run(ctx) })
	}
	if r.cfg.Retention > 0 {
		r.wg.Go(func() { r.prune(ctx) })
	}
	return nil
}

// Close stops delivering and waits for tries in flight to end (their
// outcomes are recorded).
func (r *Relay) Close() {
	if r.cancel != nil {
		r.cancel()
	}
	r.wg.Wait()
}

func (r *Relay) sink(name string) *sink {
	for _, s := range r.sinks {
		if s.cfg.Name == name {
			return s
		}
	}
	return nil
}

// Redrive puts the sink's dead letter of the event eventID back into its
// queue. Returns an ivsrt.Error ENOTFOUND if there is no such sink or dead
// letter.
func (r *Relay) Redrive(ctx context.Context, sinkName, eventID string) error {
	s := r.sink(sinkName)
	if s == nil {
		return ivsrt.Errorf(ivsrt.ENOTFOUND, "no event sink is named %q", sinkName)
	}
	d, err := r.store.RedriveDeadLetter(ctx, sinkName, eventID, r.now())
	if err != nil {
		return err
	}
	select {
	case s.redriven <- d:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-s.done:
		return nil // it is in the store's queue: the next start takes it
	}
}

// SinkStatus is a sink as operators see it.
type SinkStatus struct {
	Name            string    `json:"name"`
	Kind            string    `json:"kind"`
	Target          string    `json:"target"`
	Pending         int       `json:"pending"`
	InFlight        int       `json:"inFlight"`
	Delivered       int64     `json:"delivered"`   // since start
	Failed          int64     `json:"failedTries"` // since start
	DeadLettered    int64     `json:"deadLettered"`
	LastError       string    `json:"lastError,omitempty"`
	LastErrorAt     time.Time `json:"lastErrorAt,omitzero"`
	LastDeliveredAt time.Time `json:"lastDeliveredAt,omitzero"`
}

// Status returns the state of every sink.
func (r *Relay) Status() []SinkStatus {
	out := make([]SinkStatus, 0, len(r.sinks))
	for _, s := range r.sinks {
		s.mu.Lock()
		out = append(out, s.status)
		s.mu.Unlock()
	}
	return out
}

// SinkNames returns the names of the sinks.
func (r *Relay) SinkNames() []string {
	names := make([]string, len(r.sinks))
	for i, s := range r.sinks {
		names[i] = s.cfg.Name
	}
	return names
}

// prune deletes, now and then, the events every sink is done with and
// that are older than the retention.
func (r *Relay) prune(ctx context.Context) {
	t := time.NewTicker(r.cfg.PruneInterval)
	defer t.Stop()
	for {
		n, err := r.store.PruneEvents(ctx, r.now().Add(-r.cfg.Retention), r.SinkNames())
		if err != nil && ctx.Err() == nil {
			r.log.Error("prune event stream", "err", err)
		} else if n > 0 {
			r.log.Info("pruned event stream", "events", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
