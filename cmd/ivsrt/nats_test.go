package main

import (
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/nats-io/nats.go"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/internal/natstest"
)

// TestNATSSink: with --nats-url the server publishes its events to a real
// NATS server, a subject per stage and event.
func TestNATSSink(t *testing.T) {
	natsURL := natstest.Start(t)
	nc, err := nats.Connect(natsURL)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	msgs := make(chan *nats.Msg, 16)
	if _, err := nc.ChanSubscribe("test.>", msgs); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}

	_, c := startServer(t, func(c *Config) { c.NATSURL, c.NATSSubjectPrefix = natsURL, "test" })
	ctx := testContext(t)
	out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("natty")})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: out.Stage.Arn}); err != nil {
		t.Fatal(err)
	}
	id := aws.ToString(out.Stage.Arn)[len("arn:aws:ivs:us-east-1:123456789012:stage/"):]
	var subjects, names []string
	for len(subjects) < 2 {
		select {
		case m := <-msgs:
			var env ivsrt.Envelope
			if err := json.Unmarshal(m.Data, &env); err != nil {
				t.Fatalf("message %s: %v", m.Subject, err)
			}
			if m.Header.Get("Nats-Msg-Id") != env.ID || env.Resources[0] != aws.ToString(out.Stage.Arn) {
				t.Errorf("message %s: header %v, envelope %+v", m.Subject, m.Header, env)
			}
			subjects = append(subjects, m.Subject)
			names = append(names, env.Detail["event_name"].(string))
		case <-time.After(10 * time.Second):
			t.Fatalf("got %v within 10 s, want 2 messages", subjects)
		}
	}
	if want := []string{"test." + id + ".stage_created", "test." + id + ".stage_deleted"}; !slices.Equal(subjects, want) {
		t.Errorf("subjects %v, want %v", subjects, want)
	}
	if want := []string{"Stage Created", "Stage Deleted"}; !slices.Equal(names, want) {
		t.Errorf("events %v, want %v", names, want)
	}
}
