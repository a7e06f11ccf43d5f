// Package loadgen runs closed-loop clients for the benchmarks: each calls
// as fast as it can (or on a shared schedule), and only the calls that
// complete while recording is on are measured.
package loadgen

import (
	"context"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"
)

// Calls is what the clients measured while recording.
type Calls struct {
	Latencies  []time.Duration // of the calls that succeeded, unsorted
	Errors     int
	FirstError string
}

// Run starts n clients; client i calls call(ctx, i, rng) over and over,
// with an rng of its own, until ctx ends. With schedule set, each call
// waits for a start time from it and its latency counts from that time,
// so that time spent waiting for a free client is not hidden. Calls that
// end while recording is set are measured; wait, after ctx has ended,
// waits for the clients and returns the measurements.
func Run(ctx context.Context, n int, schedule <-chan time.Time, recording *atomic.Bool,
	call func(ctx context.Context, client int, rng *rand.Rand) error) (wait func() Calls) {
	var (
		wg  sync.WaitGroup
		mu  sync.Mutex
		all Calls
	)
	for i := range n {
		wg.Go(func() {
			rng := rand.New(rand.NewPCG(uint64(time.Now().UnixNano()), uint64(i)))
			lat := make([]time.Duration, 0, 1<<13)
			var errs int
			var firstErr string
			for ctx.Err() == nil {
				start := time.Now()
				if schedule != nil {
					select {
					case start = <-schedule:
					case <-ctx.Done():
						continue
					}
				}
				err := call(ctx, i, rng)
				d := time.Since(start)
				if !recording.Load() {
					continue
				}
				if err != nil {
					if ctx.Err() == nil {
						errs++
						if firstErr == "" {
							firstErr = err.Error()
						}
					}
					continue
				}
				lat = append(lat, d)
			}
			mu.Lock()
			all.Latencies = append(all.Latencies, lat...)
			all.Errors += errs
			if all.FirstError == "" {
				all.FirstError = firstErr
			}
			mu.Unlock()
		})
	}
	return func() Calls {
		wg.Wait()
		return all
	}
}
