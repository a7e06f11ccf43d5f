package main

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
	"github.com/ivsrt/ivsrt/bench/internal/serverproc"
)

// runMeeting measures a meeting: o.meeting publishers, each subscribed to
// every other one, and viewers subscribed to every publisher. Each
// subscription is a WHEP session of its own, as a browser opens one per
// remote participant. The publishers publish first, one after the other;
// then the participants join, o.joinConcurrency at a time, each opening
// its subscriptions at once.
func runMeeting(ctx context.Context, o *options, tmp string, viewers int) (*measurement, error) {
	if err := procstat.WaitQuiet(ctx, o.quietWait, logf); err != nil {
		return nil, err
	}
	srv, err := serverproc.StartServer(ctx, o.serverBin, tmp, o.serverFlags)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	np := o.meeting
	parts := np + viewers
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil,
		MaxIdleConnsPerHost: o.joinConcurrency*np + 8}}
	defer hc.CloseIdleConnections()
	toks, err := makeTokens(ctx, srv.API(hc), parts)
	if err != nil {
		return nil, err
	}
	m := &measurement{viewers: viewers, rssIdle: processRSS(srv.PID())}

	pubs := make([]*publisher, np)
	defer func() {
		for _, p := range pubs {
			if p != nil {
				p.close()
			}
		}
	}()
	for i := range np {
		if pubs[i], err = publish(ctx, hc, srv.URL, toks[i].token, o.stream, o.rtcpFeedback, false); err != nil {
			return nil, fmt.Errorf("publisher %d: %w (server log: %s)", i+1, err, serverproc.Tail(srv.Log))
		}
	}

	var (
		mu       sync.Mutex
		sessions []*session
	)
	defer func() {
		// The server goes first: nobody's departure needs recording.
		srv.Stop()
		var wg sync.WaitGroup
		for _, s := range sessions {
			if s.recv != nil {
				wg.Go(s.recv.close)
			}
		}
		wg.Wait()
	}()
	// joinParticipant opens participant p's subscriptions at once and
	// returns the time to the first packet of its last stream, 0 if one
	// of them failed.
	joinParticipant := func(p int) time.Duration {
		var targets []int
		for j := range np {
			if j != p {
				targets = append(targets, j)
			}
		}
		own := make([]*session, len(targets))
		began := time.Now()
		var wg sync.WaitGroup
		for k, j := range targets {
			own[k] = &session{pub: j}
			wg.Go(func() {
				own[k].recv, own[k].err = joinOne(ctx, hc, srv.URL, toks[p].token, toks[j].id, o, vp8Video)
			})
		}
		wg.Wait()
		mu.Lock()
		sessions = append(sessions, own...)
		mu.Unlock()
		var last time.Time
		for _, s := range own {
			if s.recv == nil {
				return 0
			}
			at := s.recv.counts().firstAt()
			if at.IsZero() {
				return 0
			}
			if at.After(last) {
				last = at
			}
		}
		return last.Sub(began)
	}
	var wg sync.WaitGroup
	next := make(chan int)
	for range o.joinConcurrency {
		wg.Go(func() {
			for p := range next {
				if d := joinParticipant(p); d > 0 {
					mu.Lock()
					m.partJoins = append(m.partJoins, d)
					mu.Unlock()
				}
			}
		})
	}
	for p := range parts {
		select {
		case next <- p:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var firstErr error
	var live []*session
	for _, s := range sessions {
		m.n++
		if s.recv == nil {
			m.failed++
			if firstErr == nil {
				firstErr = s.err
			}
			continue
		}
		m.subscribed++
		live = append(live, s)
		if at := s.recv.counts().firstAt(); !at.IsZero() {
			m.joins = append(m.joins, at.Sub(s.recv.began()))
		} else {
			m.failed++
		}
	}
	for _, p := range pubs {
		m.plis += p.sender.keyRequests.Load()
	}
	if m.subscribed == 0 {
		return nil, fmt.Errorf("no subscription could be set up: %v (server log: %s)", firstErr, serverproc.Tail(srv.Log))
	}
	if firstErr != nil {
		logf("  %d of %d subscriptions failed, the first: %v", m.failed, m.n, firstErr)
	}
	m.rssJoined = processRSS(srv.PID())
	if err := procstat.Sleep(ctx, o.warmup); err != nil {
		return nil, err
	}

	// The window: each publisher's counter, and what the receivers got.
	if err := measureWindow(ctx, o, srv, m, live, np, func(i int) uint64 { return pubs[i].sender.sent.Load() }); err != nil {
		return nil, err
	}
	return m, nil
}

// meetingSummary is the progress line of a meeting's phase.
func (m *measurement) meetingSummary() string {
	f := m.figures()
	return fmt.Sprintf("%d sessions, %s; participants joined (all streams) p50 %.0f ms p99 %.0f ms, server RSS %.0f MB",
		m.subscribed, m.summary(), f.partJoinP50, f.partJoinP99, f.rssMB)
}

// writeMeetingReport renders the report of the meeting's phases: the
// medians over the runs, then each run.
func writeMeetingReport(o *options, results [][]*measurement) string {
	var b strings.Builder
	writeHeader(&b, o)
	fmt.Fprintf(&b, "- meeting: %d publishers, each subscribed to the %d others; viewers subscribed to all %d; one WHEP session (DTLS, SRTP) per subscription; participants join %d at a time, each opening its subscriptions at once; the publishers' receiver reports and NACKs: %v\n\n",
		o.meeting, o.meeting-1, o.meeting, o.joinConcurrency, o.rtcpFeedback)
	b.WriteString("## ivsrt, meeting\n\n")
	median := make([]figures, len(o.viewers))
	for i := range o.viewers {
		var fs []figures
		for _, run := range results {
			fs = append(fs, run[i].figures())
		}
		median[i] = medianFigures(fs)
	}
	meetingTable(&b, o, median)
	if o.runs > 1 {
		for r, run := range results {
			fmt.Fprintf(&b, "\n<details><summary>run %d</summary>\n\n", r+1)
			fs := make([]figures, len(run))
			for i, m := range run {
				fs[i] = m.figures()
			}
			meetingTable(&b, o, fs)
			b.WriteString("\n</details>\n")
		}
	}
	b.WriteString("\n" + columnNotes)
	b.WriteString("- **participant join**: from a participant's first WHEP request to the first packet of the last of its streams (its subscriptions start together).\n")
	b.WriteString("- **server RSS**: the server's resident memory (`VmRSS`) at the end of the window.\n")
	return b.String()
}

func meetingTable(b *strings.Builder, o *options, fs []figures) {
	b.WriteString("| viewers | participants | subscriptions | set up | packets/s forwarded | Mbps on the wire | loss | SFU CPU (% of one core) | SFU CPU µs/packet | join → first packet p50 / p99 ms | participant join p50 / p99 ms | latency p50 / p99 ms | server RSS MB | bench CPU (% of one core) | other CPU |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, v := range o.viewers {
		f := fs[i]
		subs := o.meeting*(o.meeting-1) + v*o.meeting
		fmt.Fprintf(b, "| %d | %d | %d | %.0f | %s | %.0f | %s | %.0f%% | %.1f | %.0f / %.0f | %.0f / %.0f | %.1f / %.1f | %.0f | %.0f%% | %.0f%% |\n",
			v, o.meeting+v, subs, f.subscribed-f.failed, kilo(f.pps), f.mbps, pct(f.loss), f.cpu, f.usPerPkt,
			f.joinP50, f.joinP99, f.partJoinP50, f.partJoinP99, f.latP50, f.latP99, f.rssMB, f.self, f.other)
	}
}
