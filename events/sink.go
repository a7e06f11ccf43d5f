package events

import (
	"container/heap"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/ivsrt/ivsrt"
)

// A Sender hands one event to a receiver (a webhook, a NATS subject).
type Sender interface {
	// Send delivers the attempt. A nil error means the receiver has the
	// event; any other makes the relay try again later.
	Send(ctx context.Context, a *Attempt) error
}

// Attempt is one try to deliver an event.
type Attempt struct {
	Event    *ivsrt.StreamEvent
	Envelope *ivsrt.Envelope
	Body     []byte // the envelope's JSON
	Number   int    // 1 for the first try
}

// Defaults of SinkConfig.
const (
	DefaultRetryFor    = 24 * time.Hour
	DefaultMinBackoff  = time.Second
	DefaultMaxBackoff  = time.Hour
	DefaultTimeout     = 10 * time.Second
	DefaultConcurrency = 16
)

// SinkConfig configures one destination of the event stream.
type SinkConfig struct {
	// Name identifies the sink's queue in the store: a sink keeps its
	// place in the stream across restarts under the same name.
	Name   string
	Kind   string // "webhook", "nats": shown to operators
	Target string // where it delivers, without secrets: shown to operators
	Sender Sender
	Filter *Pattern // nil keeps every event

	// An event is tried until it is delivered or RetryFor has passed since
	// it entered the queue; then it becomes a dead letter. Between tries
	// the wait doubles from MinBackoff up to MaxBackoff, each wait drawn at
	// random from its upper half so that retries spread out.
	RetryFor   time.Duration
	MinBackoff time.Duration
	MaxBackoff time.Duration
	Timeout    time.Duration // of one try

	// Concurrency is how many stages' events may be in flight at once.
	// Events of one stage go one at a time, in order.
	Concurrency int
}

func (c *SinkConfig) setDefaults() {
	if c.RetryFor <= 0 {
		c.RetryFor = DefaultRetryFor
	}
	if c.MinBackoff <= 0 {
		c.MinBackoff = DefaultMinBackoff
	}
	if c.MaxBackoff <= 0 {
		c.MaxBackoff = DefaultMaxBackoff
	}
	c.MaxBackoff = max(c.MaxBackoff, c.MinBackoff)
	if c.Timeout <= 0 {
		c.Timeout = DefaultTimeout
	}
	if c.Concurrency <= 0 {
		c.Concurrency = DefaultConcurrency
	}
}

// backoff returns the wait after the attempts-th failed try.
func (c *SinkConfig) backoff(attempts int) time.Duration {
	d := c.MinBackoff
	for i := 1; i < attempts && d < c.MaxBackoff; i++ {
		d *= 2
	}
	d = min(d, c.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// sink delivers to one destination. Its queue lives in the store; the
// relay keeps a copy in memory: per stage, the deliveries in Seq order. A
// stage's first delivery is tried when due; the next only once it is
// settled, so receivers see each stage's events in order.
type sink struct {
	relay *Relay
	cfg   SinkConfig
	log   *slog.Logger

	cursor   int64
	stages   map[ivsrt.StageARN]*stageQueue
	known    map[int64]bool // the seqs in the queue
	ready    readyHeap      // stages whose first delivery is not in flight
	inFlight int
	pending  int

	results  chan tryResult
	redriven chan *ivsrt.Delivery
	done     chan struct{}

	// Outcomes applied in memory and not yet written: a stage moves on as
	// soon as its event is delivered, and the outcomes are written in
	// batches by one write at a time in the background.
	unsettled []ivsrt.DeliveryOutcome
	flushing  bool
	flushed   chan flushResult

	mu     sync.Mutex // guards status, read by Status
	status SinkStatus

	lastWarned time.Time // when a failed try was last logged above debug
}

// failureWarnEvery is how often at most a sink's failing tries are logged
// at warning level: a receiver that is down for an hour must show in the
// log, once a minute, not once per try.
const failureWarnEvery = time.Minute

type stageQueue struct {
	stage     ivsrt.StageARN
	queue     []*queued
	inFlight  bool
	heapIndex int // in ready, or -1
}

type queued struct {
	d  *ivsrt.Delivery
	ev *ivsrt.StreamEvent // nil when not kept in memory
}

type flushResult struct {
	outcomes []ivsrt.DeliveryOutcome
	err      error
}

// maxUnsettled bounds the outcomes waiting to be written: beyond it, no
// new try starts until a write has gone through.
const maxUnsettled = 4096

type tryResult struct {
	q       *stageQueue
	d       *ivsrt.Delivery
	err     error // nil: delivered
	at      time.Time
	aborted bool // cut short by shutdown: not a failure of the receiver
}

// keepInMemory is how many queued events a sink keeps whole in memory;
// beyond it, it keeps only their place and reads them when their turn
// comes, so that a long outage of a receiver does not fill the memory.
const keepInMemory = 4096

func (s *sink) load(ctx context.Context) error {
	cursor, err := s.relay.store.OpenSink(ctx, s.cfg.Name)
	if err != nil {
		return err
	}
	pending, err := s.relay.store.PendingDeliveries(ctx, s.cfg.Name)
	if err != nil {
		return err
	}
	s.cursor = cursor
	s.stages = map[ivsrt.StageARN]*stageQueue{}
	s.known = map[int64]bool{}
	s.results = make(chan tryResult, s.cfg.Concurrency)
	s.redriven = make(chan *ivsrt.Delivery)
	s.done = make(chan struct{})
	s.flushed = make(chan flushResult, 1)
	s.status = SinkStatus{Name: s.cfg.Name, Kind: s.cfg.Kind, Target: s.cfg.Target}
	for _, d := range pending {
		s.add(d, nil)
	}
	if len(pending) > 0 {
		s.log.Info("resuming deliveries", "pending", len(pending))
	}
	return nil
}

// add appends d to its stage's queue (in Seq order; a redriven delivery
// may come back before others, never before one in flight).
func (s *sink) add(d *ivsrt.Delivery, ev *ivsrt.StreamEvent) {
	if s.known[d.Seq] {
		return
	}
	s.known[d.Seq] = true
	q := s.stages[d.StageARN]
	if q == nil {
		q = &stageQueue{stage: d.StageARN, heapIndex: -1}
		s.stages[d.StageARN] = q
	}
	if s.pending >= keepInMemory {
		ev = nil
	}
	item := &queued{d: d, ev: ev}
	i := len(q.queue)
	for i > 0 && q.queue[i-1].d.Seq > d.Seq && !(i == 1 && q.inFlight) {
		i--
	}
	q.queue = append(q.queue, nil)
	copy(q.queue[i+1:], q.queue[i:])
	q.queue[i] = item
	s.pending++
	if !q.inFlight {
		if q.heapIndex >= 0 {
			heap.Fix(&s.ready, q.heapIndex)
		} else {
			heap.Push(&s.ready, q)
		}
	}
	s.setStatus(func(st *SinkStatus) { st.Pending = s.pending })
}

func (s *sink) setStatus(f func(*SinkStatus)) {
	s.mu.Lock()
	f(&s.status)
	s.mu.Unlock()
}

func (s *sink) run(ctx context.Context) {
	defer close(s.done)
	// Events are taken in beside the deliveries, so that neither waits for
	// the other's writes.
	taken := make(chan []intake)
	s.relay.wg.Go(func() { s.takeInLoop(ctx, taken) })
	timer := time.NewTimer(0)
	defer timer.Stop()
	lastResync := s.relay.now()
	for {
		if s.relay.now().Sub(lastResync) >= s.relay.cfg.ResyncInterval {
			lastResync = s.relay.now()
			if err := s.resync(ctx); err != nil && ctx.Err() == nil {
				s.log.Error("read queue back", "err", err)
			}
		}
		next := s.startDue(ctx)
		wait := s.relay.cfg.PollInterval
		if !next.IsZero() {
			wait = min(wait, max(0, next.Sub(s.relay.now())))
		}
		timer.Reset(wait)
		select {
		case <-ctx.Done():
		case <-timer.C:
		case batch := <-taken:
			for _, in := range batch {
				s.add(in.d, in.ev)
			}
		case r := <-s.results:
			s.settle(ctx, r)
		case fr := <-s.flushed:
			s.afterFlush(ctx, fr)
		case d := <-s.redriven:
			s.add(d, nil)
		}
		if ctx.Err() != nil {
			break
		}
	}
	// Let the tries in flight end (their context is cancelled) and record
	// the outcomes of those that finished, so that a restart does not send
	// them again needlessly.
	drain, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	for s.inFlight > 0 {
		select {
		case r := <-s.results:
			s.settle(drain, r)
		case fr := <-s.flushed:
			s.afterFlush(drain, fr)
		}
	}
	for s.flushing {
		fr := <-s.flushed
		s.flushing = false
		if fr.err != nil {
			s.unsettled = append(fr.outcomes, s.unsettled...)
			break
		}
		s.flush(drain)
	}
	if len(s.unsettled) > 0 {
		if err := s.relay.store.SettleDeliveries(drain, s.cfg.Name, s.unsettled); err != nil {
			// The store's queue still has them: they are sent again after
			// the restart.
			s.log.Warn("delivery outcomes not recorded", "err", err, "events", len(s.unsettled))
		}
	}
}

// resync adds to the queue in memory what the store's queue has and it
// lacks.
func (s *sink) resync(ctx context.Context) error {
	pending, err := s.relay.store.PendingDeliveries(ctx, s.cfg.Name)
	if err != nil {
		return err
	}
	for _, d := range pending {
		if !s.known[d.Seq] {
			s.log.Info("queued from elsewhere", "seq", d.Seq)
			s.add(d, nil)
		}
	}
	return nil
}

// intake is an event taken into the queue.
type intake struct {
	d  *ivsrt.Delivery
	ev *ivsrt.StreamEvent
}

// takeInLoop takes events into the queue as they are written (woken by
// the store when it can tell, else every poll interval), and hands them
// to the delivery loop on taken.
func (s *sink) takeInLoop(ctx context.Context, taken chan<- []intake) {
	var wake <-chan struct{}
	if n, ok := s.relay.store.(ivsrt.EventNotifier); ok {
		ch, stop := n.NotifyEvents()
		defer stop()
		wake = ch
	}
	timer := time.NewTimer(0)
	defer timer.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return
		case <-wake:
		case <-timer.C:
		}
		wait := s.relay.cfg.PollInterval
		if err := s.takeIn(ctx, taken); err != nil {
			if ctx.Err() != nil {
				return
			}
			failures++
			s.log.Error("take in events", "err", err)
			wait = min(time.Duration(failures)*time.Second, 30*time.Second)
		} else {
			failures = 0
		}
		timer.Reset(wait)
	}
}

// takeIn reads the events written since the cursor, queues those the
// filter keeps and moves the cursor past all of them.
func (s *sink) takeIn(ctx context.Context, taken chan<- []intake) error {
	for {
		evs, err := s.relay.store.ReadEvents(ctx, s.cursor, s.relay.cfg.BatchSize)
		if err != nil {
			return err
		}
		if len(evs) == 0 {
			return nil
		}
		var keep []*ivsrt.StreamEvent
		for _, ev := range evs {
			if s.cfg.Filter.MatchEvent(ev, s.relay.cfg.Region, s.relay.cfg.AccountID) {
				keep = append(keep, ev)
			}
		}
		through := evs[len(evs)-1].Seq
		at := s.relay.now()
		if err := s.relay.store.EnqueueDeliveries(ctx, s.cfg.Name, keep, through, at); err != nil {
			return err
		}
		s.cursor = through
		if len(keep) > 0 {
			batch := make([]intake, len(keep))
			for i, ev := range keep {
				batch[i] = intake{&ivsrt.Delivery{Sink: s.cfg.Name, Seq: ev.Seq, StageARN: ev.StageARN,
					EnqueuedAt: at.UTC().Truncate(time.Millisecond)}, ev}
			}
			select {
			case taken <- batch:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
		if len(evs) < s.relay.cfg.BatchSize {
			return nil
		}
	}
}

// startDue starts the tries that are due, as many as the concurrency
// allows, and returns when the next one is due (zero if none waits).
func (s *sink) startDue(ctx context.Context) time.Time {
	now := s.relay.now()
	for s.ready.Len() > 0 && s.inFlight < s.cfg.Concurrency && len(s.unsettled) < maxUnsettled {
		q := s.ready[0]
		head := q.queue[0]
		if head.d.NextTry.After(now) {
			return head.d.NextTry
		}
		heap.Pop(&s.ready)
		q.inFlight = true
		s.inFlight++
		s.relay.wg.Go(func() { s.results <- s.try(ctx, q, head) })
	}
	s.setStatus(func(st *SinkStatus) { st.InFlight = s.inFlight })
	if s.ready.Len() > 0 && s.inFlight < s.cfg.Concurrency && len(s.unsettled) < maxUnsettled {
		return s.ready[0].queue[0].d.NextTry
	}
	return time.Time{}
}

// try sends one event.
func (s *sink) try(ctx context.Context, q *stageQueue, item *queued) tryResult {
	res := tryResult{q: q, d: item.d}
	ev := item.ev
	if ev == nil {
		var err error
		if ev, err = s.relay.store.ReadEvent(ctx, item.d.Seq); err != nil {
			res.err, res.at = fmt.Errorf("read event %d: %w", item.d.Seq, err), s.relay.now()
			return res
		}
	}
	env := ev.Envelope(s.relay.cfg.Region, s.relay.cfg.AccountID)
	body, err := json.Marshal(env)
	if err != nil {
		res.err, res.at = fmt.Errorf("encode event %d: %w", ev.Seq, err), s.relay.now()
		return res
	}
	tctx, cancel := context.WithTimeout(ctx, s.cfg.Timeout)
	defer cancel()
	res.err = s.cfg.Sender.Send(tctx, &Attempt{Event: ev, Envelope: env, Body: body, Number: item.d.Attempts + 1})
	res.at = s.relay.now()
	res.aborted = res.err != nil && ctx.Err() != nil
	return res
}

// settle records the outcome of a try, and of any others that have ended
// meanwhile, in one write; then the stages involved move on.
func (s *sink) settle(ctx context.Context, first tryResult) {
	results := []tryResult{first}
	for more := true; more; {
		select {
		case r := <-s.results:
			results = append(results, r)
		default:
			more = false
		}
	}
	var (
		settled  []tryResult
		outcomes []ivsrt.DeliveryOutcome
	)
	for _, r := range results {
		if r.aborted {
			// Left as it was, to be tried again after the restart.
			r.q.inFlight = false
			s.inFlight--
			continue
		}
		o := ivsrt.DeliveryOutcome{Seq: r.d.Seq, Attempts: r.d.Attempts + 1, At: r.at}
		switch {
		case r.err == nil:
			o.Result = ivsrt.Delivered
		case ivsrt.ErrorCode(r.err) == ivsrt.ENOTFOUND:
			// The event is gone from the stream: nothing to deliver.
			o.Result, o.LastError = ivsrt.Dead, truncateError(r.err)
		case r.at.Sub(r.d.EnqueuedAt) >= s.cfg.RetryFor:
			o.Result, o.LastError = ivsrt.Dead, truncateError(r.err)
		default:
			o.Result, o.LastError = ivsrt.Retry, truncateError(r.err)
			o.NextTry = r.at.Add(s.cfg.backoff(o.Attempts))
		}
		settled = append(settled, r)
		outcomes = append(outcomes, o)
	}
	if len(settled) == 0 {
		return
	}
	for i, r := range settled {
		s.apply(r, outcomes[i])
	}
	s.unsettled = append(s.unsettled, outcomes...)
	s.flush(ctx)
	s.setStatus(func(st *SinkStatus) { st.InFlight, st.Pending = s.inFlight, s.pending })
}

// flush writes the outcomes not yet written, unless a write is under way
// (its end starts the next).
//
// The stages have moved on already: a receiver is not kept waiting for our
// disk, nor for the writes of the API's callers, which share it. The price
// is paid on a crash only: the deliveries of the last moments before it,
// not yet written, are made again after the restart (in order, with the
// same event ids).
func (s *sink) flush(ctx context.Context) {
	if s.flushing || len(s.unsettled) == 0 {
		return
	}
	batch := s.unsettled
	s.unsettled = nil
	s.flushing = true
	s.relay.wg.Go(func() {
		s.flushed <- flushResult{outcomes: batch, err: s.relay.store.SettleDeliveries(ctx, s.cfg.Name, batch)}
	})
}

// afterFlush takes the end of a write of outcomes.
func (s *sink) afterFlush(ctx context.Context, fr flushResult) {
	s.flushing = false
	if fr.err != nil {
		// Keep them, first, for the next write: outcomes of one event must
		// be written in the order they came.
		s.unsettled = append(fr.outcomes, s.unsettled...)
		if ctx.Err() != nil {
			return
		}
		s.log.Error("record delivery outcomes", "err", fr.err, "events", len(fr.outcomes))
		select { // do not hammer a failing store
		case <-time.After(200 * time.Millisecond):
		case <-ctx.Done():
			return
		}
	} else {
		for _, o := range fr.outcomes {
			if o.Result != ivsrt.Retry {
				delete(s.known, o.Seq) // gone from the store's queue too
			}
		}
	}
	s.flush(ctx)
}

// apply moves the memory queue as the store's will once the outcome is
// written.
func (s *sink) apply(r tryResult, o ivsrt.DeliveryOutcome) {
	q := r.q
	q.inFlight = false
	s.inFlight--
	switch o.Result {
	case ivsrt.Delivered, ivsrt.Dead:
		q.queue = q.queue[1:]
		s.pending-- // known until the outcome is written (see afterFlush)
		if o.Result == ivsrt.Delivered {
			s.setStatus(func(st *SinkStatus) { st.Delivered++; st.LastDeliveredAt = o.At })
			if obs := s.relay.delivered; obs != nil {
				obs.ObserveDelivery(s.cfg.Name, o.At.Sub(r.d.EnqueuedAt))
			}
			s.lastWarned = time.Time{} // the next failure is news
		} else {
			s.log.Warn("event undeliverable: kept as a dead letter", "seq", o.Seq, "attempts", o.Attempts, "err", o.LastError)
			s.setStatus(func(st *SinkStatus) {
				st.Failed++
				st.DeadLettered++
				st.LastError, st.LastErrorAt = o.LastError, o.At
			})
		}
	case ivsrt.Retry:
		r.d.Attempts, r.d.NextTry, r.d.LastError = o.Attempts, o.NextTry, o.LastError
		if now := s.relay.now(); now.Sub(s.lastWarned) >= failureWarnEvery {
			s.lastWarned = now
			s.log.Warn("delivery failed: will retry (further failures of this sink are logged at debug level for a minute)",
				"seq", o.Seq, "attempts", o.Attempts, "next", o.NextTry, "err", o.LastError)
		} else {
			s.log.Debug("delivery failed: will retry", "seq", o.Seq, "attempts", o.Attempts, "next", o.NextTry, "err", o.LastError)
		}
		s.setStatus(func(st *SinkStatus) { st.Failed++; st.LastError, st.LastErrorAt = o.LastError, o.At })
	}
	if len(q.queue) == 0 {
		delete(s.stages, q.stage)
		return
	}
	heap.Push(&s.ready, q)
}

// truncateError keeps error texts stored with deliveries short.
func truncateError(err error) string {
	const limit = 512
	s := err.Error()
	if len(s) > limit {
		s = s[:limit] + "…"
	}
	return s
}

// readyHeap orders stages by when their first delivery is due.
type readyHeap []*stageQueue

func (h readyHeap) Len() int { return len(h) }
func (h readyHeap) Less(i, j int) bool {
	a, b := h[i].queue[0].d, h[j].queue[0].d
	if !a.NextTry.Equal(b.NextTry) {
		return a.NextTry.Before(b.NextTry)
	}
	return a.Seq < b.Seq
}
func (h readyHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].heapIndex, h[j].heapIndex = i, j
}
func (h *readyHeap) Push(x any) {
	q := x.(*stageQueue)
	q.heapIndex = len(*h)
	*h = append(*h, q)
}
func (h *readyHeap) Pop() any {
	old := *h
	q := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	q.heapIndex = -1
	return q
}
