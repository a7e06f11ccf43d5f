package ivsrt

import (
	"testing"
	"time"
)

func TestWakers(t *testing.T) {
	var w Wakers
	a, removeA := w.Add()
	b, removeB := w.Add()
	w.Wake()
	w.Wake() // coalesced with the first
	for name, ch := range map[string]<-chan struct{}{"a": a, "b": b} {
		select {
		case <-ch:
		case <-time.After(time.Second):
			t.Fatalf("%s not woken", name)
		}
		select {
		case <-ch:
			t.Errorf("%s woken twice for two Wakes before it read", name)
		default:
		}
	}
	removeA()
	w.Wake()
	select {
	case <-a:
		t.Error("a woken after its removal")
	case <-b:
	case <-time.After(time.Second):
		t.Fatal("b not woken")
	}
	removeB()
	w.Wake() // nobody left: must not block
}

func TestDeadLetterPageKey(t *testing.T) {
	l := &DeadLetter{Sink: "hook-1", Event: &StreamEvent{Seq: 42}}
	seq, sink, err := ParseDeadLetterPageKey(l.PageKey())
	if err != nil || seq != 42 || sink != "hook-1" {
		t.Errorf("round trip: %d %q %v", seq, sink, err)
	}
	for _, bad := range []string{"", "42", "x/hook", "-1/hook"} {
		if _, _, err := ParseDeadLetterPageKey(bad); ErrorCode(err) != EINVALID {
			t.Errorf("ParseDeadLetterPageKey(%q): %v, want EINVALID", bad, err)
		}
	}
}
