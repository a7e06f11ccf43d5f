package sfu

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/ivsrt/ivsrt"
)

// The facts of the media plane (joins, leaves, publishes) are written
// through the store as they happen, with the stage locked, so the store
// sees them in order. When the store fails, a fact must not be lost: a
// participant gone from memory but CONNECTED in the store would keep its
// session open until a restart. So an event the store did not take goes to
// its stage's backlog, and a goroutine writes the backlog, in order and
// outside the stage lock, retrying with backoff (a deadline on each try,
// at most maxBackoff between tries) until the store takes each event or
// the server stops; the next start's EndStaleSessions ends what is left
// then. While a stage has a backlog its new events join the queue, so
// order holds; a join, which needs its answer from the store, first
// writes the backlog itself and is refused if it cannot.
//
// Lock order: stage.mu, then stageBacklog.writing, then backlog.mu. The
// retrying goroutine never takes a stage's lock.

const (
	minBackoff = 50 * time.Millisecond
	maxBackoff = 5 * time.Second
)

type backlog struct {
	store   ivsrt.MediaPlaneStore
	logger  *slog.Logger
	timeout time.Duration // of one write
	now     func() time.Time

	mu     sync.Mutex
	stages map[ivsrt.StageARN]*stageBacklog
	done   chan struct{} // closed when the server stops retrying
	wg     sync.WaitGroup
}

// stageBacklog is the events of one stage that wait to be written.
type stageBacklog struct {
	writing sync.Mutex // held by whoever writes its events
	events  []*ivsrt.Event
}

func newBacklog(store ivsrt.MediaPlaneStore, logger *slog.Logger, timeout time.Duration, now func() time.Time) *backlog {
	return &backlog{store: store, logger: logger, timeout: timeout, now: now,
		stages: map[ivsrt.StageARN]*stageBacklog{}, done: make(chan struct{})}
}

// retryable reports whether a failed write may succeed later: a fault of
// the store, not a refusal of the event (a deleted stage, a participant
// not in it).
func retryable(err error) bool {
	return ivsrt.ErrorCode(err) == ivsrt.EINTERNAL
}

// pending reports whether the stage has events waiting.
func (b *backlog) pending(arn ivsrt.StageARN) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.stages[arn] != nil
}

// add queues ev behind the stage's waiting events and makes sure they are
// being retried. The event keeps the time it happened, not the time the
// store takes it.
func (b *backlog) add(ev *ivsrt.Event) {
	if ev.Time.IsZero() {
		ev.Time = b.now().UTC()
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	sb := b.stages[ev.StageARN]
	if sb == nil {
		sb = &stageBacklog{}
		b.stages[ev.StageARN] = sb
		b.wg.Add(1)
		go b.retry(ev.StageARN, sb)
	}
	sb.events = append(sb.events, ev)
}

// write writes one event with a deadline.
func (b *backlog) write(ctx context.Context, ev *ivsrt.Event) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), b.timeout)
	defer cancel()
	return b.store.RecordEvent(ctx, ev)
}

// flush writes the stage's waiting events now, in order, and reports
// whether none is left. The caller holds the stage's lock.
func (b *backlog) flush(ctx context.Context, arn ivsrt.StageARN) error {
	b.mu.Lock()
	sb := b.stages[arn]
	b.mu.Unlock()
	if sb == nil {
		return nil
	}
	sb.writing.Lock()
	defer sb.writing.Unlock()
	return b.writeQueued(ctx, arn, sb)
}

// writeQueued writes sb's events until none is left or one fails; with
// sb.writing held. Events the store refuses for good are logged and
// dropped.
func (b *backlog) writeQueued(ctx context.Context, arn ivsrt.StageARN, sb *stageBacklog) error {
	for {
		b.mu.Lock()
		if len(sb.events) == 0 {
			if b.stages[arn] == sb {
				delete(b.stages, arn)
			}
			b.mu.Unlock()
			return nil
		}
		ev := sb.events[0]
		b.mu.Unlock()

		err := b.write(ctx, ev)
		if err != nil && retryable(err) {
			return err
		}
		if err != nil {
			// A departure written for a join whose outcome was unknown is
			// refused when the join never happened: nothing is lost.
			b.logger.Info("event refused by the store, dropped", "stage", arn, "participant", ev.ParticipantID,
				"event", ev.Name, "error", err)
		} else {
			b.logger.Info("event recorded after a store failure", "stage", arn, "participant", ev.ParticipantID,
				"event", ev.Name)
		}
		b.mu.Lock()
		sb.events = sb.events[1:]
		b.mu.Unlock()
	}
}

// retry writes the stage's backlog until it is empty or the server stops.
func (b *backlog) retry(arn ivsrt.StageARN, sb *stageBacklog) {
	defer b.wg.Done()
	wait := minBackoff
	for {
		select {
		case <-b.done:
			return
		case <-time.After(wait):
		}
		sb.writing.Lock()
		err := b.writeQueued(context.Background(), arn, sb)
		sb.writing.Unlock()
		if err == nil {
			return // emptied: a new backlog of the stage gets a goroutine of its own
		}
		b.logger.Warn("store still failing, will retry", "stage", arn, "in", wait, "error", err)
		wait = min(2*wait, maxBackoff)
	}
}

// close stops retrying after one last try of every stage's backlog; it
// returns what is still unwritten, which the next start's EndStaleSessions
// makes good.
func (b *backlog) close(ctx context.Context) error {
	b.mu.Lock()
	select {
	case <-b.done:
	default:
		close(b.done)
	}
	arns := make([]ivsrt.StageARN, 0, len(b.stages))
	for arn := range b.stages {
		arns = append(arns, arn)
	}
	b.mu.Unlock()
	b.wg.Wait()
	var errs []error
	for _, arn := range arns {
		if err := b.flush(ctx, arn); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return errors.New("sfu: events left unwritten at shutdown, the next start ends their sessions: " + err.Error())
	}
	return nil
}
