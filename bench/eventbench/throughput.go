package main

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/events"
)

// throughput is one point of the sweep of phase 1: S stages, C clients.
type throughput struct {
	Stages, Clients int

	// UpdateStage on the server that delivers to the webhook.
	Hook load
	// Deliveries during the measured time, and the latency from each ack
	// (measured time only) to the arrival of its event.
	Delivered  int
	Latencies  []time.Duration // sorted
	Early      int             // events that arrived before their call's ack
	Backlog    int             // acked, not yet arrived at the end of the measured time
	Drain      time.Duration   // from the end of the measured time to the last acked event's arrival
	Drained    bool            // every acked event arrived before the drain timeout
	Missing    int             // acked events that never arrived
	OutOfOrder int             // stages whose events arrived in another order than acked
	Recv       counts

	// The same load on a server without any sink.
	Plain load

	// The bench's own client POSTing signed envelopes to the receiver.
	Ceiling ceiling
}

// load is what one measured UpdateStage load did.
type load struct {
	Acks      []ack // every successful call, warm-up included
	Start     time.Time
	End       time.Time
	Errors    int
	FirstErr  string
	ServerCPU time.Duration // over the measured time; -1 when unknown
	OtherCPU  time.Duration // the rest of the machine meanwhile; -1 when unknown
}

// ack is one UpdateStage call that succeeded.
type ack struct {
	Key   string // stage ARN and new name
	Stage int
	At    time.Time // when the client had the answer
	Took  time.Duration
}

func (l load) measured() []ack {
	var out []ack
	for _, a := range l.Acks {
		if !a.At.Before(l.Start) && a.At.Before(l.End) {
			out = append(out, a)
		}
	}
	return out
}

// Rate is the acks per second over the measured time.
func (l load) Rate() float64 { return float64(len(l.measured())) / l.End.Sub(l.Start).Seconds() }

// Took returns the sorted call latencies of the measured time.
func (l load) Took() []time.Duration {
	var d []time.Duration
	for _, a := range l.measured() {
		d = append(d, a.Took)
	}
	slices.Sort(d)
	return d
}

func key(arn, name string) string { return arn + " " + name }

// names hands out the stage names "n<k>", unique across the whole bench.
var names atomic.Int64

// updateLoad runs clients calling UpdateStage on arns for warmup, then
// measures for duration. Client i owns the stages i, i+C, i+2C, ... and
// goes round them one call at a time, as fast as it can or, with rate > 0,
// at rate/C calls per second.
func updateLoad(ctx context.Context, srv *server, clients []*ivsrealtime.Client, arns []string, rate int, warmup, duration time.Duration) load {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		mu  sync.Mutex
		res load
		wg  sync.WaitGroup
	)
	for i, c := range clients {
		var own []int
		for j := i; j < len(arns); j += len(clients) {
			own = append(own, j)
		}
		wg.Go(func() {
			acks := make([]ack, 0, 1<<12)
			var errs int
			var firstErr string
			begin := time.Now()
			for k := 0; ctx.Err() == nil; k++ {
				if rate > 0 {
					due := begin.Add(time.Duration(float64(k) * float64(len(clients)) * float64(time.Second) / float64(rate)))
					sleep(ctx, time.Until(due))
					if ctx.Err() != nil {
						break
					}
				}
				stage := own[k%len(own)]
				name := "n" + strconv.FormatInt(names.Add(1), 10)
				start := time.Now()
				_, err := c.UpdateStage(ctx, &ivsrealtime.UpdateStageInput{Arn: aws.String(arns[stage]), Name: aws.String(name)})
				now := time.Now()
				if err != nil {
					if ctx.Err() == nil {
						errs++
						if firstErr == "" {
							firstErr = err.Error()
						}
					}
					continue
				}
				acks = append(acks, ack{Key: key(arns[stage], name), Stage: stage, At: now, Took: now.Sub(start)})
			}
			mu.Lock()
			res.Acks = append(res.Acks, acks...)
			res.Errors += errs
			if res.FirstErr == "" {
				res.FirstErr = firstErr
			}
			mu.Unlock()
		})
	}
	sleep(ctx, warmup)
	serverBefore, selfBefore, machineBefore := srv.cpu(), selfCPU(), machineCPU()
	res.Start = time.Now()
	sleep(ctx, duration)
	res.End = time.Now()
	serverAfter, selfAfter, machineAfter := srv.cpu(), selfCPU(), machineCPU()
	cancel()
	wg.Wait()
	res.ServerCPU, res.OtherCPU = -1, -1
	if serverBefore >= 0 && serverAfter >= 0 {
		res.ServerCPU = serverAfter - serverBefore
		if machineBefore > 0 {
			res.OtherCPU = max(0, machineAfter-machineBefore-res.ServerCPU-(selfAfter-selfBefore))
		}
	}
	slices.SortFunc(res.Acks, func(a, b ack) int { return a.At.Compare(b.At) })
	return res
}

// measureThroughput is one point of phase 1.
func measureThroughput(ctx context.Context, cfg *config, dir string, rcv *receiver, stages int) (throughput, error) {
	t := throughput{Stages: stages, Clients: min(stages, cfg.MaxClients)}
	tr := newTransport(t.Clients)
	defer tr.CloseIdleConnections()

	// With the webhook.
	srv, err := startServer(ctx, cfg.Server, dir, fmt.Sprintf("hook-%d", stages),
		"--webhook-url", rcv.url(), "--webhook-secret", hookSecret)
	if err != nil {
		return t, err
	}
	defer srv.stop()
	arns, err := setupStages(ctx, srv, tr, rcv, stages)
	if err != nil {
		return t, err
	}
	clients := make([]*ivsrealtime.Client, t.Clients)
	for i := range clients {
		clients[i] = newClient(srv.url, tr)
	}
	waitQuiet(ctx, cfg.QuietWait)
	logf("  %d stages, %d clients: UpdateStage with the webhook, %v warm-up, %v measured", stages, t.Clients, cfg.Warmup, cfg.Duration)
	t.Hook = updateLoad(ctx, srv, clients, arns, cfg.Rate, cfg.Warmup, cfg.Duration)
	if err := ctx.Err(); err != nil {
		return t, err
	}
	if len(t.Hook.Acks) == 0 {
		return t, fmt.Errorf("no UpdateStage call succeeded: %s", t.Hook.FirstErr)
	}

	// Wait until every acked event has arrived.
	want := make(map[string]int, len(t.Hook.Acks))
	for i, a := range t.Hook.Acks {
		want[a.Key] = i
	}
	got := make([]time.Time, len(t.Hook.Acks))
	var next, matched int
	var last time.Time
	t.Backlog = len(t.Hook.Acks) // fixed below
	logf("  draining: %d events acked", len(t.Hook.Acks))
	_, err = rcv.waitFor(ctx, cfg.DrainTimeout, func(as []arrival) int {
		for ; next < len(as); next++ {
			if i, ok := want[key(as[next].Stage, as[next].StageName)]; ok && got[i].IsZero() {
				got[i] = as[next].At
				matched++
				last = as[next].At
			}
		}
		if matched == len(got) {
			return len(as) - 1
		}
		return -1
	})
	switch {
	case err == errTimeout:
		logf("  not drained after %v: %d of %d events missing", cfg.DrainTimeout, len(got)-matched, len(got))
	case err != nil:
		return t, err
	default:
		t.Drained = true
	}
	time.Sleep(300 * time.Millisecond) // a copy sent twice would show now
	t.Recv = rcv.counts()
	t.Drain = max(0, last.Sub(t.Hook.End))

	t.Backlog = 0
	lastSeen := map[int]time.Time{}
	outOfOrder := map[int]bool{}
	for i, a := range t.Hook.Acks {
		at := got[i]
		if at.IsZero() {
			t.Missing++
		}
		if at.IsZero() || at.After(t.Hook.End) {
			t.Backlog++
		}
		if at.IsZero() {
			continue
		}
		// Acks of one stage come from one client, in order.
		if at.Before(lastSeen[a.Stage]) {
			outOfOrder[a.Stage] = true
		}
		lastSeen[a.Stage] = at
		if !a.At.Before(t.Hook.Start) && a.At.Before(t.Hook.End) {
			d := at.Sub(a.At)
			if d < 0 {
				t.Early++
			}
			t.Latencies = append(t.Latencies, d)
		}
	}
	t.OutOfOrder = len(outOfOrder)
	slices.Sort(t.Latencies)
	for _, a := range rcv.snapshot() {
		if !a.At.Before(t.Hook.Start) && a.At.Before(t.Hook.End) {
			t.Delivered++
		}
	}
	srv.stop()
	rcv.reset()

	// The same load without a sink.
	plain, err := startServer(ctx, cfg.Server, dir, fmt.Sprintf("plain-%d", stages))
	if err != nil {
		return t, err
	}
	defer plain.stop()
	arns, err = setupStages(ctx, plain, tr, nil, stages)
	if err != nil {
		return t, err
	}
	for i := range clients {
		clients[i] = newClient(plain.url, tr)
	}
	waitQuiet(ctx, cfg.QuietWait)
	logf("  %d stages, %d clients: UpdateStage without a sink", stages, t.Clients)
	t.Plain = updateLoad(ctx, plain, clients, arns, cfg.Rate, cfg.Warmup, cfg.Duration)
	plain.stop()
	if err := ctx.Err(); err != nil {
		return t, err
	}

	// The receiver's ceiling, as many posting at once as the relay would.
	waitQuiet(ctx, cfg.QuietWait)
	t.Ceiling = measureCeiling(ctx, rcv, arns, min(stages, events.DefaultConcurrency), cfg.Warmup, cfg.Duration)
	rcv.reset()
	return t, ctx.Err()
}

// setupStages creates n stages and, with a receiver, waits until their
// Stage Created events have arrived, then clears the receiver.
func setupStages(ctx context.Context, srv *server, tr *http.Transport, rcv *receiver, n int) ([]string, error) {
	arns, err := createStages(ctx, newClient(srv.url, tr), "eventbench", n)
	if err != nil || rcv == nil {
		return arns, err
	}
	_, err = rcv.waitFor(ctx, 60*time.Second, func(as []arrival) int {
		if len(as) >= n {
			return n - 1
		}
		return -1
	})
	if err != nil {
		return nil, fmt.Errorf("the Stage Created events of setup: %w", err)
	}
	rcv.reset()
	return arns, nil
}

// ceiling is what the receiver takes straight from the bench's client.
type ceiling struct {
	Concurrency int
	Posts       int
	Errors      int
	Elapsed     time.Duration
	Latencies   []time.Duration // sorted
}

func (c ceiling) Rate() float64 { return float64(c.Posts) / c.Elapsed.Seconds() }

// measureCeiling POSTs signed envelopes of the size the server sends,
// from n goroutines, to the receiver.
func measureCeiling(ctx context.Context, rcv *receiver, arns []string, n int, warmup, duration time.Duration) ceiling {
	logf("  receiver ceiling: %d posting at once", n)
	res := ceiling{Concurrency: n}
	tr := newTransport(n)
	defer tr.CloseIdleConnections()
	client := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	secrets := [][]byte{[]byte(hookSecret)}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var (
		recording atomic.Bool
		mu        sync.Mutex
		wg        sync.WaitGroup
	)
	for i := range n {
		wg.Go(func() {
			var lat []time.Duration
			var errs int
			for k := 0; ctx.Err() == nil; k++ {
				body := envelopeLike(arns[(i+k*n)%len(arns)], "n"+strconv.FormatInt(names.Add(1), 10))
				start := time.Now()
				err := post(ctx, client, rcv.url(), secrets, body)
				d := time.Since(start)
				if !recording.Load() {
					continue
				}
				if err != nil {
					if ctx.Err() == nil {
						errs++
					}
					continue
				}
				lat = append(lat, d)
			}
			mu.Lock()
			res.Latencies = append(res.Latencies, lat...)
			res.Errors += errs
			mu.Unlock()
		})
	}
	sleep(ctx, warmup)
	recording.Store(true)
	start := time.Now()
	sleep(ctx, duration)
	recording.Store(false)
	res.Elapsed = time.Since(start)
	cancel()
	wg.Wait()
	slices.Sort(res.Latencies)
	res.Posts = len(res.Latencies)
	return res
}

// envelopeLike returns the JSON of a Stage Updated envelope as the server
// writes it, with a fresh id.
func envelopeLike(arn, name string) []byte {
	var id [16]byte
	rand.Read(id[:])
	id[6], id[8] = id[6]&0x0f|0x40, id[8]&0x3f|0x80
	body, _ := json.Marshal(&ivsrt.Envelope{
		Version:    "0",
		ID:         fmt.Sprintf("%x-%x-%x-%x-%x", id[0:4], id[4:6], id[6:8], id[8:10], id[10:]),
		DetailType: "IVS Stage Change",
		Source:     "aws.ivs",
		Account:    "123456789012",
		Time:       time.Now().UTC().Format(time.RFC3339),
		Region:     region,
		Resources:  []string{arn},
		Detail:     map[string]any{"event_name": "Stage Updated", "stage_name": name},
	})
	return body
}

// post sends one signed envelope as the server's webhook does.
func post(ctx context.Context, c *http.Client, url string, secrets [][]byte, body []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(events.AttemptHeader, "1")
	req.Header.Set(events.SignatureHeader, events.Sign(secrets, time.Now(), body))
	resp, err := c.Do(req)
	if err != nil {
		return err
	}
	io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d", resp.StatusCode)
	}
	return nil
}

// sleep waits d or until ctx ends.
func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}
