package main

import (
	"crypto/ecdsa"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/golang-jwt/jwt/v5"

	"github.com/ivsrt/ivsrt/bot"
)

// selfSign makes a participant token as a customer's server does (see
// docs/self-signed-tokens.md): ES384 with its own key, the public key's
// ARN as the kid, the claims AWS documents, the URLs from the stage's
// endpoints.
func selfSign(t testing.TB, c *ivsrealtime.Client, key *ecdsa.PrivateKey, keyARN, stage, jti, user string, publish, subscribe bool) string {
	t.Helper()
	return selfSignEdited(t, c, key, keyARN, stage, jti, user, publish, subscribe, nil)
}

// selfSignEdited is selfSign with the claims changed by edit.
func selfSignEdited(t testing.TB, c *ivsrealtime.Client, key *ecdsa.PrivateKey, keyARN, stage, jti, user string, publish, subscribe bool,
	edit func(jwt.MapClaims)) string {
	t.Helper()
	st, err := c.GetStage(testContext(t), &ivsrealtime.GetStageInput{Arn: aws.String(stage)})
	if err != nil {
		t.Fatalf("GetStage: %v", err)
	}
	now := time.Now()
	tok := jwt.NewWithClaims(jwt.SigningMethodES384, jwt.MapClaims{
		"exp":          now.Add(time.Hour).Unix(),
		"iat":          now.Unix(),
		"jti":          jti,
		"resource":     stage,
		"topic":        stage[strings.LastIndex(stage, "/")+1:],
		"events_url":   aws.ToString(st.Stage.Endpoints.Events),
		"whip_url":     aws.ToString(st.Stage.Endpoints.Whip),
		"user_id":      user,
		"attributes":   map[string]string{"via": "self-signed"},
		"capabilities": map[string]bool{"allow_publish": publish, "allow_subscribe": subscribe},
		"version":      "1.0",
	})
	tok.Header["kid"] = keyARN
	if edit != nil {
		edit(tok.Claims.(jwt.MapClaims))
	}
	signed, err := tok.SignedString(key)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
	return signed
}

// TestSelfSignedBots runs bots of the whole server with tokens the test
// signs with its own P-384 key: one publishes video and audio, another
// subscribes and receives them; DisconnectParticipant ends the viewer for
// good; after DeletePublicKey the key's tokens no longer join.
func TestSelfSignedBots(t *testing.T) {
	if testing.Short() {
		t.Skip("runs bots")
	}
	t.Parallel()
	_, c := startServer(t)
	ctx := testContext(t)
	stage := createStage(t, c, "self-signed")
	key, material := newKeyPair(t)
	keyARN := importKey(t, c, "customer", material, nil)

	hostTok := selfSign(t, c, key, keyARN, stage, "host-1", "alice", true, true)
	viewerTok := selfSign(t, c, key, keyARN, stage, "viewer-1", "bob", false, true)
	host, _, _ := runBot(t, bot.Config{Token: hostTok, Video: true, Audio: true})
	session := waitPublishing(t, c, stage, "host-1")
	viewer, _, _ := runBot(t, bot.Config{Token: viewerTok, Subscribe: true})
	eventually(t, 20*time.Second, "the viewer receives the host's video and audio", func() error {
		for _, r := range viewer.Stats().Received {
			if r.ParticipantID == "host-1" && r.VideoFrames >= 20 && r.AudioPackets >= 20 {
				return nil
			}
		}
		return fmt.Errorf("received %+v", viewer.Stats().Received)
	})
	if id := host.ParticipantID(); id != "host-1" {
		t.Errorf("the host's participant id: got %q, want its jti", id)
	}

	// The API lists them by their jti, with what their tokens say.
	out, err := c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(stage), SessionId: aws.String(session)})
	if err != nil {
		t.Fatalf("ListParticipants: %v", err)
	}
	var listed []string
	for _, p := range out.Participants {
		listed = append(listed, fmt.Sprintf("%s %s %s published=%v", aws.ToString(p.ParticipantId), aws.ToString(p.UserId), p.State, p.Published))
	}
	slices.Sort(listed)
	checkJSON(t, "ListParticipants", listed, []string{"host-1 alice CONNECTED published=true", "viewer-1 bob CONNECTED published=false"})
	got, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(stage), SessionId: aws.String(session),
		ParticipantId: aws.String("viewer-1")})
	if err != nil {
		t.Fatalf("GetParticipant: %v", err)
	}
	if got.Participant.Attributes["via"] != "self-signed" {
		t.Errorf("GetParticipant viewer-1: attributes %v, want the token's", got.Participant.Attributes)
	}

	// DisconnectParticipant ends the viewer, and its token cannot join
	// again.
	if _, err := c.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(stage),
		ParticipantId: aws.String("viewer-1"), Reason: aws.String("banned")}); err != nil {
		t.Fatalf("DisconnectParticipant: %v", err)
	}
	// waitFailed waits for a bot to fail with want in its error.
	waitFailed := func(what string, b *bot.Bot, want string) {
		t.Helper()
		eventually(t, 10*time.Second, what, func() error {
			if s := b.Stats(); s.State != bot.StateFailed || !strings.Contains(s.Error, want) {
				return fmt.Errorf("state %s, error %q, want failed with %q", s.State, s.Error, want)
			}
			return nil
		})
	}
	waitFailed("the disconnected viewer", viewer, "DISCONNECTED: banned")
	again, _, _ := runBot(t, bot.Config{Token: viewerTok, Subscribe: true})
	waitFailed("the disconnected viewer again", again, "TOKEN_REVOKED")

	// The key is deleted: its tokens are refused, while the host goes on.
	if _, err := c.DeletePublicKey(ctx, &ivsrealtime.DeletePublicKeyInput{Arn: aws.String(keyARN)}); err != nil {
		t.Fatalf("DeletePublicKey: %v", err)
	}
	late := selfSign(t, c, key, keyARN, stage, "late-1", "carol", false, true)
	lateBot, _, _ := runBot(t, bot.Config{Token: late, Subscribe: true})
	waitFailed("a token of the deleted key", lateBot, "TOKEN_INVALID: token signed by an unknown key")
	if s := host.Stats(); s.State != bot.StatePublishing {
		t.Errorf("the host after DeletePublicKey: state %s (%s), want publishing", s.State, s.Error)
	}
	_, err = c.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(stage),
		ParticipantId: aws.String("late-1")})
	var nf *types.ResourceNotFoundException
	if !errors.As(err, &nf) {
		t.Errorf("DisconnectParticipant of a jti never admitted: got %v, want ResourceNotFoundException", err)
	}
}
