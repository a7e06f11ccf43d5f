package sfu_test

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/coder/websocket"
)

// TestMuteInState: what a publisher's client says it muted shows in the
// stage state of everyone, per track, until it unmutes; messages of
// another kind are ignored. The state tells each participant's
// capabilities.
func TestMuteInState(t *testing.T) {
	t.Parallel()
	h := newHarness(t)
	stage := h.createStage("mute")
	alice := h.token(stage, "alice")
	bob := h.token(stage, "bob", types.ParticipantTokenCapabilitySubscribe)
	aliceID := aws.ToString(alice.ParticipantId)

	aliceWS := h.dialEvents(aws.ToString(alice.Token))
	aliceWS.next("joined")
	h.mustPublish(aws.ToString(alice.Token), vp8, true)
	bobWS := h.dialEvents(aws.ToString(bob.Token))
	bobWS.next("joined")

	send := func(m map[string]any) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
		defer cancel()
		buf, _ := json.Marshal(m)
		if err := aliceWS.conn.Write(ctx, websocket.MessageText, buf); err != nil {
			t.Fatal(err)
		}
	}
	// tracks is alice's tracks in a state: kind → muted.
	tracks := func(ps []map[string]any) map[string]bool {
		for _, p := range ps {
			if p["participantId"] != aliceID {
				continue
			}
			got := map[string]bool{}
			ts, _ := p["tracks"].([]any)
			for _, tr := range ts {
				tr := tr.(map[string]any)
				muted, _ := tr["muted"].(bool)
				got[tr["kind"].(string)] = muted
			}
			return got
		}
		return nil
	}
	want := func(what string, audio, video bool) map[string]any {
		t.Helper()
		return bobWS.waitState(what, func(ps []map[string]any) bool {
			got := tracks(ps)
			return len(got) == 2 && got["audio"] == audio && got["video"] == video
		})
	}

	state := want("alice publishes, nothing muted", false, false)
	for _, p := range state["participants"].([]any) {
		p := p.(map[string]any)
		caps := fmt.Sprint(p["capabilities"])
		if p["participantId"] == aliceID && caps != "[PUBLISH SUBSCRIBE]" {
			t.Errorf("alice's capabilities in the state got %s", caps)
		}
		if p["participantId"] == aws.ToString(bob.ParticipantId) && caps != "[SUBSCRIBE]" {
			t.Errorf("bob's capabilities in the state got %s", caps)
		}
	}
	send(map[string]any{"type": "mute", "kind": "video", "muted": true})
	want("alice's video muted", false, true)
	send(map[string]any{"type": "mute", "kind": "screen", "muted": true}) // ignored
	send(map[string]any{"type": "mute", "kind": "audio", "muted": true})
	want("alice's audio muted too", true, true)
	send(map[string]any{"type": "mute", "kind": "video", "muted": false})
	want("alice's video back", true, false)
}
