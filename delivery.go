package ivsrt

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// A sink is a named destination of the event stream (a webhook, a NATS
// subject). Each sink has its own queue in the store, so that it survives
// restarts and a slow or absent receiver holds back no one else:
//
//   - the sink's cursor is the Seq of the last event taken into its queue
//     (events its filter rejects are passed over, not queued);
//   - its queue holds the events taken in and not yet settled, each with the
//     tries made so far;
//   - an event whose last try failed leaves the queue as a dead letter.
//
// Events of one stage are delivered one at a time, in Seq order: the queue's
// first event of a stage blocks the stage's later ones until it is settled.

// Delivery is an event in a sink's queue.
type Delivery struct {
	Sink       string
	Seq        int64
	StageARN   StageARN
	EnqueuedAt time.Time // when the event entered the queue; retries stop some time after it
	Attempts   int       // tries made so far
	NextTry    time.Time // not before; zero means at once
	LastError  string    // why the last try failed
}

// DeliveryResult is what became of a try.
type DeliveryResult int

// Results of a try.
const (
	Delivered DeliveryResult = iota + 1 // the receiver took it: it leaves the queue
	Retry                               // it failed and is tried again at NextTry
	Dead                                // it failed for the last time: it becomes a dead letter
)

// DeliveryOutcome is the outcome of one try of the event Seq.
type DeliveryOutcome struct {
	Seq       int64
	Result    DeliveryResult
	Attempts  int       // tries made, this one included
	NextTry   time.Time // Retry only
	LastError string    // Retry and Dead
	At        time.Time // when the try ended
}

// DeadLetter is an event a sink gave up on.
type DeadLetter struct {
	Sink       string
	Event      *StreamEvent
	EnqueuedAt time.Time
	DeadAt     time.Time
	Attempts   int
	LastError  string
}

// PageKey returns the key of d for Page.After in ListDeadLetters.
func (d *DeadLetter) PageKey() string { return fmt.Sprintf("%d/%s", d.Event.Seq, d.Sink) }

// ParseDeadLetterPageKey is the inverse of PageKey.
func ParseDeadLetterPageKey(key string) (seq int64, sink string, err error) {
	n, sink, ok := strings.Cut(key, "/")
	if !ok {
		return 0, "", Errorf(EINVALID, "malformed dead letter page key")
	}
	seq, err = strconv.ParseInt(n, 10, 64)
	if err != nil || seq < 0 {
		return 0, "", Errorf(EINVALID, "malformed dead letter page key")
	}
	return seq, sink, nil
}

// DeliveryStore keeps the sinks' queues. Every method acts on the sink
// named, which need not exist before (OpenSink creates it).
type DeliveryStore interface {
	// OpenSink returns the sink's cursor. A sink seen for the first time
	// starts at the end of the event stream: it gets the events written
	// from then on.
	OpenSink(ctx context.Context, sink string) (cursor int64, err error)

	// EnqueueDeliveries appends events (in Seq order, all above the cursor)
	// to the sink's queue and moves its cursor to through, which is at
	// least the last event's Seq, in one transaction. Returns ECONFLICT if
	// the cursor has moved past an event given (another writer took it in).
	EnqueueDeliveries(ctx context.Context, sink string, events []*StreamEvent, through int64, at time.Time) error

	// PendingDeliveries returns the sink's queue in Seq order.
	PendingDeliveries(ctx context.Context, sink string) ([]*Delivery, error)

	// ReadEvent returns the event Seq of the stream, ENOTFOUND if there is
	// none (or it was pruned).
	ReadEvent(ctx context.Context, seq int64) (*StreamEvent, error)

	// SettleDeliveries records the outcomes of tries, in one transaction.
	// An outcome for an event not in the queue (settled already) is
	// ignored.
	SettleDeliveries(ctx context.Context, sink string, outcomes []DeliveryOutcome) error

	// ListDeadLetters returns up to page.Limit dead letters in Seq order
	// (then by sink); of one sink, or of all if sink is "". page.After is
	// the PageKey of the last dead letter of the page before; EINVALID if
	// it is not one.
	ListDeadLetters(ctx context.Context, sink string, page Page) ([]*DeadLetter, error)

	// RedriveDeadLetter puts the sink's dead letter of the event eventID
	// back into the queue, with no tries made, and returns its delivery.
	// Returns ENOTFOUND if there is no such dead letter.
	RedriveDeadLetter(ctx context.Context, sink, eventID string, at time.Time) (*Delivery, error)

	// PruneEvents deletes the events written before before that none of
	// sinks still needs: below every such sink's cursor, in no queue and
	// no dead letter. It returns how many it deleted.
	PruneEvents(ctx context.Context, before time.Time, sinks []string) (int64, error)
}

// Wakers is a set of channels to wake when something happens: what a store
// needs to implement EventNotifier. The zero value is ready to use.
type Wakers struct {
	mu    sync.Mutex
	chans map[chan struct{}]struct{}
}

// Add returns a new channel of the set, which receives a value after Wake
// (several Wakes before it reads may give one value), and a function that
// removes it.
func (w *Wakers) Add() (<-chan struct{}, func()) {
	ch := make(chan struct{}, 1)
	w.mu.Lock()
	if w.chans == nil {
		w.chans = map[chan struct{}]struct{}{}
	}
	w.chans[ch] = struct{}{}
	w.mu.Unlock()
	return ch, func() {
		w.mu.Lock()
		delete(w.chans, ch)
		w.mu.Unlock()
	}
}

// Wake wakes every channel of the set that is not awake already.
func (w *Wakers) Wake() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for ch := range w.chans {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
}

// EventNotifier is implemented by stores that can tell when events were
// written, so that readers need not poll hard.
type EventNotifier interface {
	// NotifyEvents returns a channel that receives a value soon after
	// events are committed (several commits may give one value), and a
	// function to call when done with it.
	NotifyEvents() (<-chan struct{}, func())
}
