package main

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
)

// outage is phase 3: the receiver is down while events are written, then
// comes back.
type outage struct {
	Events, Stages int
	Write          time.Duration // to write the events, receiver down
	Down           time.Duration // receiver stopped → started again
	First          time.Duration // receiver started → first event in
	All            time.Duration // receiver started → last event in
	Arrived        int           // distinct events of the outage that arrived
	Missing        int
	OutOfOrder     int   // stages whose events arrived in another order than written
	Pending        int   // queued in the server when the receiver came back
	FailedTries    int64 // tries the receiver did not take, outage included
	Recv           counts
}

// measureOutage writes cfg.OutageEvents across cfg.OutageStages stages
// while the receiver is down, starts it again and waits for them all.
func measureOutage(ctx context.Context, cfg *config, dir string, rcv *receiver) (outage, error) {
	o := outage{Events: cfg.OutageEvents, Stages: cfg.OutageStages}
	sinks, err := json.Marshal(map[string]any{"webhooks": []map[string]any{{
		"name": "webhook", "url": rcv.url(), "secret": hookSecret,
		"minBackoff": cfg.MinBackoff.String(), "maxBackoff": cfg.MaxBackoff.String(),
	}}})
	if err != nil {
		return o, err
	}
	sinksFile := filepath.Join(dir, "sinks.json")
	if err := os.WriteFile(sinksFile, sinks, 0o600); err != nil {
		return o, err
	}
	srv, err := startServer(ctx, cfg.Server, dir, "outage", "--event-sinks", sinksFile)
	if err != nil {
		return o, err
	}
	defer srv.stop()
	tr := newTransport(o.Stages)
	defer tr.CloseIdleConnections()
	arns, err := setupStages(ctx, srv, tr, rcv, o.Stages)
	if err != nil {
		return o, err
	}

	waitQuiet(ctx, cfg.QuietWait)
	logf("  outage: receiver down, writing %d events on %d stages", o.Events, o.Stages)
	rcv.stop()
	down := time.Now()
	// One writer per stage, so that each stage's events are written in a
	// known order.
	written := make([][]string, o.Stages)
	errs := make([]error, o.Stages)
	var wg sync.WaitGroup
	for s := range o.Stages {
		n := o.Events / o.Stages
		if s < o.Events%o.Stages {
			n++
		}
		wg.Go(func() {
			c := newClient(srv.url, tr)
			for range n {
				name := "n" + strconv.FormatInt(names.Add(1), 10)
				_, err := c.UpdateStage(ctx, &ivsrealtime.UpdateStageInput{Arn: aws.String(arns[s]), Name: aws.String(name)})
				if err != nil {
					errs[s] = fmt.Errorf("UpdateStage: %w", err)
					return
				}
				written[s] = append(written[s], key(arns[s], name))
			}
		})
	}
	wg.Wait()
	o.Write = time.Since(down)
	for _, err := range errs {
		if err != nil {
			rcv.start()
			return o, err
		}
	}
	// Long enough for the retries to back off to their longest wait.
	sleep(ctx, cfg.OutageHold)
	before, err := srv.sinks(ctx)
	if err != nil {
		rcv.start()
		return o, err
	}
	if err := rcv.start(); err != nil {
		return o, err
	}
	up := time.Now()
	o.Down = up.Sub(down)
	logf("  outage: receiver up again after %.1f s", o.Down.Seconds())

	order := map[string][2]int{} // key → stage, place
	for s, keys := range written {
		for i, k := range keys {
			order[k] = [2]int{s, i}
		}
	}
	var next, arrived int
	_, err = rcv.waitFor(ctx, cfg.DrainTimeout, func(as []arrival) int {
		for ; next < len(as); next++ {
			if _, ok := order[key(as[next].Stage, as[next].StageName)]; ok {
				arrived++
			}
		}
		if arrived == len(order) {
			return len(as) - 1
		}
		return -1
	})
	if err != nil && err != errTimeout {
		return o, err
	}
	time.Sleep(500 * time.Millisecond) // a copy sent twice would show now
	o.Recv = rcv.counts()
	after, err := srv.sinks(ctx)
	if err != nil {
		return o, err
	}
	for _, s := range after {
		o.FailedTries += s.FailedTries
	}
	for _, s := range before {
		o.Pending += s.Pending
	}

	lastPlace := make([]int, o.Stages)
	for i := range lastPlace {
		lastPlace[i] = -1
	}
	bad := map[int]bool{}
	for _, a := range rcv.snapshot() {
		p, ok := order[key(a.Stage, a.StageName)]
		if !ok {
			continue
		}
		if o.Arrived == 0 {
			o.First = a.At.Sub(up)
		}
		o.Arrived++
		o.All = a.At.Sub(up)
		if p[1] != lastPlace[p[0]]+1 {
			bad[p[0]] = true
		}
		lastPlace[p[0]] = p[1]
	}
	o.Missing = len(order) - o.Arrived
	o.OutOfOrder = len(bad)
	rcv.reset()
	return o, nil
}
