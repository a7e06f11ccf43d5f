package sfu_test

import (
	"database/sql"
	"fmt"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/webrtc/v4"
	_ "modernc.org/sqlite"

	"github.com/ivsrt/ivsrt/sfu"
)

// TestStoreFailureWhileLeaving: the store stops taking writes (another
// connection holds SQLite's write lock, as a stuck transaction or a full
// disk would) while everyone leaves. The participants are gone from the
// media plane at once; their departures wait in the stage's backlog and,
// once the store takes writes again, are written in the order they
// happened: afterwards the API shows every participant DISCONNECTED and
// the session ended. A join during the outage is refused, not half done.
func TestStoreFailureWhileLeaving(t *testing.T) {
	t.Parallel()
	h := newHarness(t, sfu.WithStoreTimeout(300*time.Millisecond))
	stage := h.createStage("store-fault")
	alice, bob, carol, dave := h.token(stage, "alice"), h.token(stage, "bob"), h.token(stage, "carol"), h.token(stage, "dave")
	aliceID, bobID, carolID := aws.ToString(alice.ParticipantId), aws.ToString(bob.ParticipantId), aws.ToString(carol.ParticipantId)

	pub := h.mustPublish(aws.ToString(alice.Token), vp8, true)
	wsB, wsC := h.dialEvents(aws.ToString(bob.Token)), h.dialEvents(aws.ToString(carol.Token))
	session := wsB.next("joined")["sessionId"].(string)
	wsC.next("joined")
	sub := h.mustSubscribe(aws.ToString(bob.Token), aliceID)
	sub.waitFor(webrtc.RTPCodecTypeVideo, 10)
	for _, id := range []string{aliceID, bobID, carolID} {
		eventually(t, id+" connected", func() error {
			if got := h.participants(stage, session)[id].State; got != types.ParticipantStateConnected {
				return fmt.Errorf("state %s", got)
			}
			return nil
		})
	}

	// The outage: a second connection takes the write lock.
	lock, err := sql.Open("sqlite", h.db.Path())
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	conn, err := lock.Conn(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(testContext(t), "BEGIN EXCLUSIVE"); err != nil {
		t.Fatalf("take the write lock: %v", err)
	}
	locked := true
	unlock := func() {
		if locked {
			locked = false
			if _, err := conn.ExecContext(testContext(t), "ROLLBACK"); err != nil {
				t.Errorf("release the write lock: %v", err)
			}
		}
	}
	defer unlock()

	if code := h.delete(sub.location); code != 200 {
		t.Errorf("WHEP DELETE got %d, want 200", code)
	}
	if code := h.delete(pub.location); code != 200 {
		t.Errorf("WHIP DELETE got %d, want 200", code)
	}
	wsB.conn.Close(1000, "bye")
	wsC.conn.Close(1000, "bye")
	eventually(t, "everyone gone from the media plane", func() error {
		if n := h.sfu.ParticipantCount(); n != 0 {
			return fmt.Errorf("%d participants", n)
		}
		return nil
	})

	// A join now would be recorded after departures the store has not
	// taken yet: it is refused.
	wsD := h.dialEvents(aws.ToString(dave.Token))
	if m := wsD.next("error"); m["code"] == nil {
		t.Errorf("join during the outage got %v, want an error", m)
	}
	if n := h.sfu.ParticipantCount(); n != 0 {
		t.Errorf("%d participants after a refused join, want 0", n)
	}

	unlock()
	h.waitIdle(stage)
	ps := h.participants(stage, session)
	for _, id := range []string{aliceID, bobID, carolID} {
		if got := ps[id].State; got != types.ParticipantStateDisconnected {
			t.Errorf("participant %s is %s after the outage, want DISCONNECTED", id, got)
		}
	}
	h.waitHistory(stage, session, aliceID, "JOINED", "PUBLISH_STARTED", "PUBLISH_STOPPED", "LEFT")
	h.waitHistory(stage, session, bobID, "JOINED", "SUBSCRIBE_STARTED remote="+aliceID,
		"SUBSCRIBE_STOPPED remote="+aliceID, "LEFT")
	h.waitHistory(stage, session, carolID, "JOINED", "LEFT")
	out, err := h.client.GetStageSession(testContext(t), &ivsrealtime.GetStageSessionInput{
		StageArn: aws.String(stage), SessionId: aws.String(session)})
	if err != nil || out.StageSession.EndTime == nil {
		t.Errorf("GetStageSession got %+v, %v; want an end time", out, err)
	}

	// The store is back: joining works again.
	wsD = h.dialEvents(aws.ToString(dave.Token))
	wsD.next("joined")
}
