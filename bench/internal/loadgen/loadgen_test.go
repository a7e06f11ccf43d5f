package loadgen

import (
	"context"
	"errors"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"
)

func TestRun(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	var recording atomic.Bool
	var calls atomic.Int64
	wait := Run(ctx, 4, nil, &recording, func(ctx context.Context, client int, rng *rand.Rand) error {
		n := calls.Add(1)
		time.Sleep(time.Millisecond)
		if n%10 == 0 {
			return errors.New("every tenth fails")
		}
		return nil
	})
	time.Sleep(20 * time.Millisecond) // not measured
	before := calls.Load()
	recording.Store(true)
	time.Sleep(50 * time.Millisecond)
	recording.Store(false)
	cancel()
	got := wait()
	measured := len(got.Latencies) + got.Errors
	if measured == 0 || int64(measured) >= calls.Load() || before == 0 {
		t.Errorf("measured %d of %d calls (%d before recording)", measured, calls.Load(), before)
	}
	if got.Errors == 0 || got.FirstError != "every tenth fails" {
		t.Errorf("errors %d, first %q", got.Errors, got.FirstError)
	}
	for _, d := range got.Latencies {
		if d < time.Millisecond {
			t.Fatalf("latency %v below the call's 1 ms", d)
		}
	}
}
