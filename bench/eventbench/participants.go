package main

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/ivsrt/ivsrt/bot"
)

// participants is phase 2: the time from what a participant does to the
// arrival of the event that tells of it.
type participants struct {
	Joined     []time.Duration // bot's Run start → Participant Joined
	Published  []time.Duration // bot's Run start → Participant Published
	Disconnect []time.Duration // DisconnectParticipant ack → Participant Left
	Cancel     []time.Duration // the bot's context cancelled → Participant Left
	Recv       counts
}

// running is a bot whose Run is in progress.
type running struct {
	bot     *bot.Bot
	started time.Time
	cancel  context.CancelFunc
	done    chan error
}

// stop cancels the bot and waits, a bounded time, for its Run to return.
func (r *running) stop() {
	r.cancel()
	select {
	case <-r.done:
	case <-time.After(15 * time.Second):
		logf("  a bot did not stop within 15 s")
	}
}

func measureParticipants(ctx context.Context, cfg *config, dir string, rcv *receiver) (participants, error) {
	var p participants
	srv, err := startServer(ctx, cfg.Server, dir, "participants",
		"--webhook-url", rcv.url(), "--webhook-secret", hookSecret)
	if err != nil {
		return p, err
	}
	defer srv.stop()
	tr := newTransport(4)
	defer tr.CloseIdleConnections()
	arns, err := setupStages(ctx, srv, tr, rcv, 1)
	if err != nil {
		return p, err
	}
	c := newClient(srv.url, tr)
	botHTTP := &http.Client{Transport: newTransport(4), Timeout: 30 * time.Second}
	defer botHTTP.Transport.(*http.Transport).CloseIdleConnections()

	start := func(user string) (*running, error) {
		out, err := c.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{
			StageArn: aws.String(arns[0]), UserId: aws.String(user)})
		if err != nil {
			return nil, fmt.Errorf("CreateParticipantToken: %w", err)
		}
		b, err := bot.New(bot.Config{Token: aws.ToString(out.ParticipantToken.Token), Video: true, HTTPClient: botHTTP})
		if err != nil {
			return nil, err
		}
		bctx, cancel := context.WithCancel(ctx)
		r := &running{bot: b, cancel: cancel, done: make(chan error, 1)}
		r.started = time.Now()
		go func() { r.done <- b.Run(bctx) }()
		return r, nil
	}
	const wait = 30 * time.Second
	waitEvent := func(name string, r *running) (arrival, error) {
		a, err := rcv.waitFor(ctx, wait, find(name, r.bot.ParticipantID()))
		if err != nil {
			return a, fmt.Errorf("%s of participant %s: %w", name, r.bot.ParticipantID(), err)
		}
		return a, nil
	}

	waitQuiet(ctx, cfg.QuietWait)
	logf("  participants: %d times join and publish, disconnect, leave", cfg.Reps)
	for i := range cfg.Reps {
		// (a) join and publish, (b) disconnected by the API.
		a, err := start(fmt.Sprintf("bench-a-%d", i))
		if err != nil {
			return p, err
		}
		pub, err := waitEvent("Participant Published", a)
		if err != nil {
			a.stop()
			return p, err
		}
		joined, err := waitEvent("Participant Joined", a)
		if err != nil {
			a.stop()
			return p, err
		}
		p.Joined = append(p.Joined, joined.At.Sub(a.started))
		p.Published = append(p.Published, pub.At.Sub(a.started))
		_, err = c.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{
			StageArn: aws.String(arns[0]), ParticipantId: aws.String(a.bot.ParticipantID()), Reason: aws.String("eventbench")})
		acked := time.Now()
		if err != nil {
			a.stop()
			return p, fmt.Errorf("DisconnectParticipant: %w", err)
		}
		left, err := waitEvent("Participant Left", a)
		a.stop()
		if err != nil {
			return p, err
		}
		p.Disconnect = append(p.Disconnect, left.At.Sub(acked))

		// (c) leaves by itself.
		b, err := start(fmt.Sprintf("bench-b-%d", i))
		if err != nil {
			return p, err
		}
		if _, err := waitEvent("Participant Published", b); err != nil {
			b.stop()
			return p, err
		}
		cancelled := time.Now()
		b.cancel()
		left, err = waitEvent("Participant Left", b)
		b.stop()
		if err != nil {
			return p, err
		}
		p.Cancel = append(p.Cancel, left.At.Sub(cancelled))
		if ctx.Err() != nil {
			return p, ctx.Err()
		}
	}
	time.Sleep(300 * time.Millisecond) // a copy sent twice would show now
	p.Recv = rcv.counts()
	for _, s := range [][]time.Duration{p.Joined, p.Published, p.Disconnect, p.Cancel} {
		slices.Sort(s)
	}
	rcv.reset()
	return p, nil
}
