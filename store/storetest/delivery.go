package storetest

import (
	"slices"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
)

// seqs returns the Seqs of deliveries.
func seqs(ds []*ivsrt.Delivery) []int64 {
	var out []int64
	for _, d := range ds {
		out = append(out, d.Seq)
	}
	return out
}

func (e *env) pending(t *testing.T, sink string) []*ivsrt.Delivery {
	t.Helper()
	q, err := e.s.PendingDeliveries(e.ctx, sink)
	if err != nil {
		t.Fatalf("PendingDeliveries(%s): %v", sink, err)
	}
	return q
}

func (e *env) openSink(t *testing.T, sink string) int64 {
	t.Helper()
	cursor, err := e.s.OpenSink(e.ctx, sink)
	if err != nil {
		t.Fatalf("OpenSink(%s): %v", sink, err)
	}
	return cursor
}

func (e *env) enqueue(t *testing.T, sink string, events []*ivsrt.StreamEvent, through int64) {
	t.Helper()
	if err := e.s.EnqueueDeliveries(e.ctx, sink, events, through, e.clock.Now()); err != nil {
		t.Fatalf("EnqueueDeliveries(%s, %d events, %d): %v", sink, len(events), through, err)
	}
}

func (e *env) settle(t *testing.T, sink string, outcomes ...ivsrt.DeliveryOutcome) {
	t.Helper()
	if err := e.s.SettleDeliveries(e.ctx, sink, outcomes); err != nil {
		t.Fatalf("SettleDeliveries(%s): %v", sink, err)
	}
}

func (e *env) deadLetters(t *testing.T, sink string) []*ivsrt.DeadLetter {
	t.Helper()
	var all []*ivsrt.DeadLetter
	page := ivsrt.Page{Limit: 2}
	for {
		letters, err := e.s.ListDeadLetters(e.ctx, sink, page)
		if err != nil {
			t.Fatalf("ListDeadLetters(%s): %v", sink, err)
		}
		all = append(all, letters...)
		if len(letters) < page.Limit {
			return all
		}
		page.After = letters[len(letters)-1].PageKey()
	}
}

func testDelivery(t *testing.T, open OpenFunc) {
	t.Run("a new sink starts at the end of the stream", func(t *testing.T) {
		e := newEnv(t, open)
		if c := e.openSink(t, "empty"); c != 0 {
			t.Errorf("cursor of a sink of an empty stream: got %d, want 0", c)
		}
		e.createStage(t, "a", nil)
		e.createStage(t, "b", nil)
		last, err := e.s.LastEventSeq(e.ctx)
		if err != nil {
			t.Fatal(err)
		}
		if c := e.openSink(t, "late"); c != last {
			t.Errorf("cursor of a new sink: got %d, want %d (the last event)", c, last)
		}
		if c := e.openSink(t, "empty"); c != 0 {
			t.Errorf("cursor of a sink opened again: got %d, want 0 (where it was)", c)
		}
		if q := e.pending(t, "late"); len(q) != 0 {
			t.Errorf("queue of a new sink: got %d deliveries", len(q))
		}
	})

	t.Run("queue, settle, dead letters, redrive", func(t *testing.T) {
		e := newEnv(t, open)
		e.openSink(t, "hook")
		e.openSink(t, "other")
		a := e.createStage(t, "a", nil)
		b := e.createStage(t, "b", nil)
		e.createStage(t, "c", nil) // passed over by the filter
		d := e.createStage(t, "d", nil)
		events := ReadAllEvents(t, e.s, 0, 100)
		if len(events) != 4 {
			t.Fatalf("got %d events, want 4", len(events))
		}
		enqueuedAt := e.clock.Advance(time.Second)
		take := []*ivsrt.StreamEvent{events[0], events[1], events[3]}
		e.enqueue(t, "hook", take, events[3].Seq)
		if c := e.openSink(t, "hook"); c != events[3].Seq {
			t.Errorf("cursor after enqueue: got %d, want %d", c, events[3].Seq)
		}
		q := e.pending(t, "hook")
		if got, want := seqs(q), []int64{events[0].Seq, events[1].Seq, events[3].Seq}; !slices.Equal(got, want) {
			t.Fatalf("queue: got %v, want %v", got, want)
		}
		for i, st := range []ivsrt.StageARN{a.ARN, b.ARN, d.ARN} {
			if q[i].StageARN != st || q[i].Sink != "hook" || q[i].Attempts != 0 || !q[i].NextTry.IsZero() || q[i].LastError != "" {
				t.Errorf("delivery %d: got %+v, want stage %s, no tries", i, q[i], st)
			}
			checkTime(t, "EnqueuedAt", q[i].EnqueuedAt, enqueuedAt)
		}
		if q := e.pending(t, "other"); len(q) != 0 {
			t.Errorf("another sink's queue: got %v, want empty", seqs(q))
		}

		// Taking in an event twice is refused, and changes nothing.
		err := e.s.EnqueueDeliveries(e.ctx, "hook", events[3:], events[3].Seq, e.clock.Now())
		wantCode(t, "EnqueueDeliveries again", err, ivsrt.ECONFLICT)
		err = e.s.EnqueueDeliveries(e.ctx, "hook", nil, events[1].Seq, e.clock.Now())
		wantCode(t, "EnqueueDeliveries moving the cursor back", err, ivsrt.ECONFLICT)
		if got := seqs(e.pending(t, "hook")); len(got) != 3 {
			t.Errorf("queue after refused enqueues: got %v", got)
		}

		next := e.clock.Advance(time.Minute)
		dead := e.clock.Advance(time.Second)
		e.settle(t, "hook",
			ivsrt.DeliveryOutcome{Seq: events[0].Seq, Result: ivsrt.Delivered, Attempts: 1, At: e.clock.Now()},
			ivsrt.DeliveryOutcome{Seq: events[1].Seq, Result: ivsrt.Retry, Attempts: 2, NextTry: next, LastError: "HTTP 503", At: e.clock.Now()},
			ivsrt.DeliveryOutcome{Seq: events[3].Seq, Result: ivsrt.Dead, Attempts: 7, LastError: "connection refused", At: dead},
			ivsrt.DeliveryOutcome{Seq: events[2].Seq, Result: ivsrt.Delivered, At: e.clock.Now()}, // not queued: ignored
		)
		q = e.pending(t, "hook")
		if len(q) != 1 || q[0].Seq != events[1].Seq || q[0].Attempts != 2 || q[0].LastError != "HTTP 503" {
			t.Fatalf("queue after settling: got %+v, want event %d retried", q, events[1].Seq)
		}
		checkTime(t, "NextTry", q[0].NextTry, next)
		checkTime(t, "EnqueuedAt after a retry", q[0].EnqueuedAt, enqueuedAt)

		letters := e.deadLetters(t, "hook")
		if len(letters) != 1 {
			t.Fatalf("dead letters: got %d, want 1", len(letters))
		}
		l := letters[0]
		if l.Sink != "hook" || l.Event.Seq != events[3].Seq || l.Event.ID != events[3].ID || l.Event.StageARN != d.ARN ||
			l.Event.EventName() != ivsrt.StreamStageCreated || l.Attempts != 7 || l.LastError != "connection refused" {
			t.Errorf("dead letter: got %+v %+v", l, l.Event)
		}
		checkTime(t, "DeadAt", l.DeadAt, dead)
		checkTime(t, "dead letter EnqueuedAt", l.EnqueuedAt, enqueuedAt)
		if got := e.deadLetters(t, "other"); len(got) != 0 {
			t.Errorf("another sink's dead letters: got %d", len(got))
		}

		_, err = e.s.RedriveDeadLetter(e.ctx, "other", events[3].ID, e.clock.Now())
		wantCode(t, "RedriveDeadLetter of another sink", err, ivsrt.ENOTFOUND)
		_, err = e.s.RedriveDeadLetter(e.ctx, "hook", ivsrt.NewEventID(), e.clock.Now())
		wantCode(t, "RedriveDeadLetter of an unknown event", err, ivsrt.ENOTFOUND)
		redriven := e.clock.Advance(time.Hour)
		rd, err := e.s.RedriveDeadLetter(e.ctx, "hook", events[3].ID, redriven)
		if err != nil {
			t.Fatalf("RedriveDeadLetter: %v", err)
		}
		if rd.Seq != events[3].Seq || rd.StageARN != d.ARN || rd.Attempts != 0 || rd.Sink != "hook" {
			t.Errorf("redriven delivery: got %+v", rd)
		}
		checkTime(t, "redriven EnqueuedAt", rd.EnqueuedAt, redriven)
		if got, want := seqs(e.pending(t, "hook")), []int64{events[1].Seq, events[3].Seq}; !slices.Equal(got, want) {
			t.Errorf("queue after redrive: got %v, want %v", got, want)
		}
		if got := e.deadLetters(t, "hook"); len(got) != 0 {
			t.Errorf("dead letters after redrive: got %d, want 0", len(got))
		}
		_, err = e.s.RedriveDeadLetter(e.ctx, "hook", events[3].ID, redriven)
		wantCode(t, "RedriveDeadLetter twice", err, ivsrt.ENOTFOUND)

		got, err := e.s.ReadEvent(e.ctx, events[1].Seq)
		if err != nil || got.ID != events[1].ID || got.EventName() != ivsrt.StreamStageCreated {
			t.Errorf("ReadEvent(%d): got %+v, %v", events[1].Seq, got, err)
		}
		_, err = e.s.ReadEvent(e.ctx, events[3].Seq+100)
		wantCode(t, "ReadEvent of no event", err, ivsrt.ENOTFOUND)
	})

	t.Run("dead letters of all sinks, paged", func(t *testing.T) {
		e := newEnv(t, open)
		sinks := []string{"a", "b", "c"}
		for _, s := range sinks {
			e.openSink(t, s)
		}
		for range 3 {
			e.createStage(t, "s", nil)
		}
		events := ReadAllEvents(t, e.s, 0, 100)
		for _, s := range sinks {
			e.enqueue(t, s, events, events[len(events)-1].Seq)
			var outcomes []ivsrt.DeliveryOutcome
			for _, ev := range events {
				outcomes = append(outcomes, ivsrt.DeliveryOutcome{Seq: ev.Seq, Result: ivsrt.Dead, Attempts: 1, LastError: "x", At: e.clock.Now()})
			}
			e.settle(t, s, outcomes...)
		}
		all := e.deadLetters(t, "")
		if len(all) != 9 {
			t.Fatalf("dead letters of all sinks: got %d, want 9", len(all))
		}
		for i, l := range all {
			ev, sink := events[i/3], sinks[i%3]
			if l.Event.Seq != ev.Seq || l.Sink != sink {
				t.Errorf("dead letter %d: got event %d of %s, want %d of %s", i, l.Event.Seq, l.Sink, ev.Seq, sink)
			}
		}
		if got := e.deadLetters(t, "b"); len(got) != 3 || got[0].Sink != "b" {
			t.Errorf("dead letters of b: got %d", len(got))
		}
		for _, after := range []string{"x", "12", "-1/a", "a/b"} {
			_, err := e.s.ListDeadLetters(e.ctx, "", ivsrt.Page{After: after, Limit: 10})
			wantCode(t, "ListDeadLetters after "+after, err, ivsrt.EINVALID)
		}
	})

	t.Run("prune", func(t *testing.T) {
		e := newEnv(t, open)
		e.openSink(t, "hook")
		e.openSink(t, "slow")
		for range 5 {
			e.createStage(t, "s", nil)
			e.clock.Advance(time.Minute)
		}
		events := ReadAllEvents(t, e.s, 0, 100)
		// hook has taken in everything: events[1] waits, events[2] is dead.
		e.enqueue(t, "hook", events, events[4].Seq)
		var outcomes []ivsrt.DeliveryOutcome
		for i, ev := range events {
			o := ivsrt.DeliveryOutcome{Seq: ev.Seq, Result: ivsrt.Delivered, Attempts: 1, At: e.clock.Now()}
			switch i {
			case 1:
				o.Result, o.NextTry, o.LastError = ivsrt.Retry, e.clock.Now(), "x"
			case 2:
				o.Result, o.LastError = ivsrt.Dead, "x"
			}
			outcomes = append(outcomes, o)
		}
		e.settle(t, "hook", outcomes...)
		// slow has taken in up to events[3].
		e.enqueue(t, "slow", nil, events[3].Seq)

		// Nothing is old enough.
		if n, err := e.s.PruneEvents(e.ctx, events[0].Time, []string{"hook", "slow"}); err != nil || n != 0 {
			t.Errorf("PruneEvents before the first event: got %d, %v, want 0", n, err)
		}
		n, err := e.s.PruneEvents(e.ctx, e.clock.Now(), []string{"hook", "slow"})
		if err != nil {
			t.Fatalf("PruneEvents: %v", err)
		}
		// Kept: events[1] (queued), events[2] (dead letter), events[4] (beyond slow's cursor).
		left := ReadAllEvents(t, e.s, 0, 100)
		var got []int64
		for _, ev := range left {
			got = append(got, ev.Seq)
		}
		if want := []int64{events[1].Seq, events[2].Seq, events[4].Seq}; n != 2 || !slices.Equal(got, want) {
			t.Errorf("after PruneEvents: deleted %d, left %v; want 2 deleted, %v left", n, got, want)
		}
		if got := e.deadLetters(t, "hook"); len(got) != 1 || got[0].Event.ID != events[2].ID {
			t.Errorf("dead letters after prune: got %d", len(got))
		}
		// Without slow (no longer configured), its cursor holds nothing back.
		if n, err := e.s.PruneEvents(e.ctx, e.clock.Now(), []string{"hook"}); err != nil || n != 1 {
			t.Errorf("PruneEvents without slow: got %d, %v, want 1", n, err)
		}
		st := e.createStage(t, "after", nil)
		newer := ReadAllEvents(t, e.s, events[4].Seq, 100)
		if len(newer) != 1 || newer[0].StageARN != st.ARN || newer[0].Seq <= events[4].Seq {
			t.Errorf("an event written after pruning: got %v, want one with a seq above %d", newer, events[4].Seq)
		}
	})
}
