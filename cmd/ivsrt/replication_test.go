package main

import (
	"fmt"
	"maps"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/bot"
	"github.com/ivsrt/ivsrt/events/eventstest"
)

// withMaxReplicas bounds how many stages a participant may be replicated
// to at once.
func withMaxReplicas(n int) serverOption { return func(c *Config) { c.MaxReplicas = n } }

// listReplicas lists the replications of a participant, every page of
// them.
func listReplicas(t *testing.T, c *ivsrealtime.Client, source, id string, pageSize int32) []types.ParticipantReplica {
	t.Helper()
	var all []types.ParticipantReplica
	in := &ivsrealtime.ListParticipantReplicasInput{SourceStageArn: aws.String(source), ParticipantId: aws.String(id)}
	if pageSize > 0 {
		in.MaxResults = aws.Int32(pageSize)
	}
	for {
		out, err := c.ListParticipantReplicas(testContext(t), in)
		if err != nil {
			t.Fatalf("ListParticipantReplicas: %v", err)
		}
		if pageSize > 0 && len(out.Replicas) > int(pageSize) {
			t.Fatalf("ListParticipantReplicas: %d on a page of %d", len(out.Replicas), pageSize)
		}
		all = append(all, out.Replicas...)
		if out.NextToken == nil {
			return all
		}
		in.NextToken = out.NextToken
	}
}

// checkSecurityHeaders checks the response headers the output shapes of
// StartParticipantReplication and StopParticipantReplication declare, as
// the SDK read them.
func checkSecurityHeaders(t *testing.T, op string, got map[string]*string) {
	t.Helper()
	want := map[string]string{
		"accessControlAllowOrigin": "*",
		"cacheControl":             "no-store",
		"contentSecurityPolicy":    "default-src 'none'; frame-ancestors 'none'",
		"strictTransportSecurity":  "max-age=47304000; includeSubDomains",
		"xContentTypeOptions":      "nosniff",
		"xFrameOptions":            "DENY",
	}
	for k, w := range want {
		if g := aws.ToString(got[k]); g != w {
			t.Errorf("%s %s: got %q, want %q", op, k, g, w)
		}
	}
	if aws.ToString(got["accessControlExposeHeaders"]) == "" {
		t.Errorf("%s accessControlExposeHeaders: none", op)
	}
}

// TestParticipantReplication replicates a publisher of one stage into
// another through the SDK: a subscriber of the destination gets the
// source's media as it was sent, the API shows both ends, the events tell
// of it (the API's and the event stream's), and the stop takes the replica
// out.
func TestParticipantReplication(t *testing.T) {
	if testing.Short() {
		t.Skip("media")
	}
	t.Parallel()
	rcv := eventstest.NewReceiver(t, webhookSecret)
	rcv.Up()
	m, c := startServer(t, withWebhook(rcv.URL(), 0))
	ctx := testContext(t)
	base := "http://" + m.Addr()
	source, dest := createStage(t, c, "vs-source"), createStage(t, c, "vs-destination")
	alice := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(source), UserId: aws.String("alice"),
		Attributes: map[string]string{"role": "host", "color": "red"}})
	aliceID := aws.ToString(alice.ParticipantId)
	synthPublish(t, base, aws.ToString(alice.Token))
	sa := waitPublishing(t, c, source, aliceID)

	started, err := c.StartParticipantReplication(ctx, &ivsrealtime.StartParticipantReplicationInput{
		SourceStageArn: aws.String(source), DestinationStageArn: aws.String(dest), ParticipantId: aws.String(aliceID),
		ReconnectWindowSeconds: aws.Int32(10), Attributes: map[string]string{"color": "blue", "vs": "1"}})
	if err != nil {
		t.Fatalf("StartParticipantReplication: %v", err)
	}
	checkSecurityHeaders(t, "StartParticipantReplication", map[string]*string{
		"accessControlAllowOrigin": started.AccessControlAllowOrigin, "accessControlExposeHeaders": started.AccessControlExposeHeaders,
		"cacheControl": started.CacheControl, "contentSecurityPolicy": started.ContentSecurityPolicy,
		"strictTransportSecurity": started.StrictTransportSecurity, "xContentTypeOptions": started.XContentTypeOptions,
		"xFrameOptions": started.XFrameOptions})
	sb := activeSession(t, c, dest)

	// The viewer of the destination gets alice's media, as she sent it.
	viewer := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(dest), UserId: aws.String("viewer"),
		Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}})
	viewerID := aws.ToString(viewer.ParticipantId)
	sub, err := synthSubscribe(t, base, aws.ToString(viewer.Token), aliceID)
	if err != nil {
		t.Fatalf("subscribe to the replica: %v", err)
	}
	sub.waitMedia(t, 100, 20*time.Second)

	// Both ends of the replication.
	rep, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(dest), SessionId: aws.String(sb),
		ParticipantId: aws.String(aliceID)})
	if err != nil {
		t.Fatalf("GetParticipant of the replica: %v", err)
	}
	p := rep.Participant
	wantAttrs := map[string]string{"role": "host", "color": "blue", "vs": "1"}
	if p.ReplicationType != types.ReplicationTypeReplica || p.ReplicationState != types.ReplicationStateActive ||
		aws.ToString(p.SourceStageArn) != source || aws.ToString(p.SourceSessionId) != sa || aws.ToString(p.UserId) != "alice" ||
		!maps.Equal(p.Attributes, wantAttrs) || !p.Published || p.State != types.ParticipantStateConnected {
		t.Errorf("replica: got %s %s from %s %s, user %s, attributes %v, published %v, %s",
			p.ReplicationType, p.ReplicationState, aws.ToString(p.SourceStageArn), aws.ToString(p.SourceSessionId),
			aws.ToString(p.UserId), p.Attributes, p.Published, p.State)
	}
	src, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(source), SessionId: aws.String(sa),
		ParticipantId: aws.String(aliceID)})
	if err != nil {
		t.Fatalf("GetParticipant of the source: %v", err)
	}
	if s := src.Participant; s.ReplicationType != types.ReplicationTypeSource || s.ReplicationState != types.ReplicationStateActive ||
		s.SourceStageArn != nil {
		t.Errorf("source: got %s %s %v, want SOURCE ACTIVE and no source", s.ReplicationType, s.ReplicationState, aws.ToString(s.SourceStageArn))
	}
	reps := listReplicas(t, c, source, aliceID, 0)
	if len(reps) != 1 {
		t.Fatalf("ListParticipantReplicas: got %d, want 1", len(reps))
	}
	want := types.ParticipantReplica{SourceStageArn: aws.String(source), ParticipantId: aws.String(aliceID), SourceSessionId: aws.String(sa),
		DestinationStageArn: aws.String(dest), DestinationSessionId: aws.String(sb), ReplicationState: types.ReplicationStateActive}
	checkJSON(t, "replica", reps[0], want)

	// Its events, and the viewer's subscription to it.
	evs, err := c.ListParticipantEvents(ctx, &ivsrealtime.ListParticipantEventsInput{StageArn: aws.String(source),
		SessionId: aws.String(sa), ParticipantId: aws.String(aliceID)})
	if err != nil {
		t.Fatal(err)
	}
	last := evs.Events[len(evs.Events)-1]
	if last.Name != types.EventNameReplicationStarted || aws.ToString(last.DestinationStageArn) != dest ||
		aws.ToString(last.DestinationSessionId) != sb || last.Replica {
		t.Errorf("source's last event: got %s to %s %s replica %v", last.Name, aws.ToString(last.DestinationStageArn),
			aws.ToString(last.DestinationSessionId), last.Replica)
	}
	evs, err = c.ListParticipantEvents(ctx, &ivsrealtime.ListParticipantEventsInput{StageArn: aws.String(dest),
		SessionId: aws.String(sb), ParticipantId: aws.String(viewerID)})
	if err != nil {
		t.Fatal(err)
	}
	var sawSubscribe bool
	for _, e := range evs.Events {
		if e.Name == types.EventNameSubscribeStarted {
			sawSubscribe = e.Replica && aws.ToString(e.RemoteParticipantId) == aliceID
		}
	}
	if !sawSubscribe {
		t.Errorf("viewer's events: no SUBSCRIBE_STARTED to the replica with replica true: %+v", evs.Events)
	}

	// The stop.
	stopped, err := c.StopParticipantReplication(ctx, &ivsrealtime.StopParticipantReplicationInput{
		SourceStageArn: aws.String(source), DestinationStageArn: aws.String(dest), ParticipantId: aws.String(aliceID)})
	if err != nil {
		t.Fatalf("StopParticipantReplication: %v", err)
	}
	checkSecurityHeaders(t, "StopParticipantReplication", map[string]*string{
		"accessControlAllowOrigin": stopped.AccessControlAllowOrigin, "accessControlExposeHeaders": stopped.AccessControlExposeHeaders,
		"cacheControl": stopped.CacheControl, "contentSecurityPolicy": stopped.ContentSecurityPolicy,
		"strictTransportSecurity": stopped.StrictTransportSecurity, "xContentTypeOptions": stopped.XContentTypeOptions,
		"xFrameOptions": stopped.XFrameOptions})
	sub.waitGone(t, 10*time.Second)
	want.ReplicationState = types.ReplicationStateStopped
	checkJSON(t, "replica after the stop", listReplicas(t, c, source, aliceID, 0), []types.ParticipantReplica{want})
	rep, err = c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(dest), SessionId: aws.String(sb),
		ParticipantId: aws.String(aliceID)})
	if err != nil {
		t.Fatal(err)
	}
	if p := rep.Participant; p.ReplicationState != types.ReplicationStateStopped || p.State != types.ParticipantStateDisconnected {
		t.Errorf("replica after the stop: %s %s, want STOPPED DISCONNECTED", p.ReplicationState, p.State)
	}

	// The event stream: Participant Replication Started and Stopped, on
	// the source stage, and the replica's own events flagged.
	var replication, replicaJoined []*ivsrt.Envelope
	eventually(t, 20*time.Second, "the replication events delivered", func() error {
		accepted, _, _ := rcv.Snapshot()
		replication, replicaJoined = nil, nil
		for _, env := range accepted {
			switch env.Detail["event_name"] {
			case ivsrt.StreamReplicationStarted, ivsrt.StreamReplicationStopped:
				replication = append(replication, env)
			case ivsrt.StreamParticipantJoined:
				if env.Detail["participant_id"] == aliceID && env.Resources[0] == dest {
					replicaJoined = append(replicaJoined, env)
				}
			}
		}
		if len(replication) < 2 || len(replicaJoined) < 1 {
			return fmt.Errorf("%d replication events, %d joins of the replica", len(replication), len(replicaJoined))
		}
		return nil
	})
	for i, name := range []string{ivsrt.StreamReplicationStarted, ivsrt.StreamReplicationStopped} {
		env := replication[i]
		wantDetail := map[string]any{"session_id": sa, "event_name": name, "participant_id": aliceID, "user_id": "alice",
			"source_stage_arn": source, "source_session_id": sa, "destination_stage_arn": dest, "destination_session_id": sb}
		if env.DetailType != ivsrt.DetailTypeStageUpdate || !slices.Equal(env.Resources, []string{source}) || !maps.Equal(env.Detail, wantDetail) {
			t.Errorf("%s: got %s %v %v, want %s %v %v", name, env.DetailType, env.Resources, env.Detail,
				ivsrt.DetailTypeStageUpdate, []string{source}, wantDetail)
		}
	}
	if replicaJoined[0].Detail["replica"] != true {
		t.Errorf("the replica's Participant Joined: detail %v, want replica true", replicaJoined[0].Detail)
	}
}

// TestParticipantReplicaPages replicates one participant into three
// stages and lists them a page at a time.
func TestParticipantReplicaPages(t *testing.T) {
	if testing.Short() {
		t.Skip("media")
	}
	t.Parallel()
	m, c := startServer(t)
	ctx := testContext(t)
	source := createStage(t, c, "source")
	alice := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(source), UserId: aws.String("alice")})
	aliceID := aws.ToString(alice.ParticipantId)
	synthPublish(t, "http://"+m.Addr(), aws.ToString(alice.Token))
	waitPublishing(t, c, source, aliceID)
	var dests []string
	for i := range 3 {
		dest := createStage(t, c, fmt.Sprintf("destination-%d", i))
		dests = append(dests, dest)
		if _, err := c.StartParticipantReplication(ctx, &ivsrealtime.StartParticipantReplicationInput{
			SourceStageArn: aws.String(source), DestinationStageArn: aws.String(dest), ParticipantId: aws.String(aliceID)}); err != nil {
			t.Fatalf("StartParticipantReplication %d: %v", i, err)
		}
	}
	var got []string
	for _, r := range listReplicas(t, c, source, aliceID, 1) {
		got = append(got, aws.ToString(r.DestinationStageArn))
	}
	if !slices.Equal(got, dests) {
		t.Errorf("replicas page by page: got %v, want %v", got, dests)
	}
	// A token of another list is refused.
	page, err := c.ListParticipantReplicas(ctx, &ivsrealtime.ListParticipantReplicasInput{SourceStageArn: aws.String(source),
		ParticipantId: aws.String(aliceID), MaxResults: aws.Int32(2)})
	if err != nil || page.NextToken == nil {
		t.Fatalf("first page of 2: %v, %v", page, err)
	}
	_, err = c.ListParticipantReplicas(ctx, &ivsrealtime.ListParticipantReplicasInput{SourceStageArn: aws.String(dests[0]),
		ParticipantId: aws.String(aliceID), NextToken: page.NextToken})
	checkError(t, err, validation("nextToken"))
}

// TestParticipantReplicationErrors checks every validation rule of the
// three operations, through the SDK and, for what the SDK refuses to
// send, raw signed requests; and every refusal: unknown stages, a
// participant that does not publish, the same stage, a replication that
// exists, a replica, the quota.
func TestParticipantReplicationErrors(t *testing.T) {
	if testing.Short() {
		t.Skip("media")
	}
	t.Parallel()
	m, c := startServer(t, withMaxReplicas(1))
	ctx := testContext(t)
	base := "http://" + m.Addr()
	source, dest, other := createStage(t, c, "source"), createStage(t, c, "destination"), createStage(t, c, "other")
	missing := "arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD0000"
	alice := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(source), UserId: aws.String("alice")})
	aliceID := aws.ToString(alice.ParticipantId)
	synthPublish(t, base, aws.ToString(alice.Token))
	waitPublishing(t, c, source, aliceID)
	// Bob is in the source stage without publishing; Carol has a token
	// and never joined.
	bob := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(source), UserId: aws.String("bob"),
		Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}})
	runBot(t, bot.Config{Token: aws.ToString(bob.Token), Subscribe: true})
	carol := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(source), UserId: aws.String("carol")})
	eventually(t, 20*time.Second, "bob joined", func() error {
		if _, ok := sessionParticipants(t, c, source)[aws.ToString(bob.ParticipantId)]; !ok {
			return fmt.Errorf("not yet")
		}
		return nil
	})

	start := func(src, dst, id string, window *int32, attrs map[string]string) error {
		_, err := c.StartParticipantReplication(ctx, &ivsrealtime.StartParticipantReplicationInput{
			SourceStageArn: aws.String(src), DestinationStageArn: aws.String(dst), ParticipantId: aws.String(id),
			ReconnectWindowSeconds: window, Attributes: attrs})
		return err
	}
	stop := func(src, dst, id string) error {
		_, err := c.StopParticipantReplication(ctx, &ivsrealtime.StopParticipantReplicationInput{
			SourceStageArn: aws.String(src), DestinationStageArn: aws.String(dst), ParticipantId: aws.String(id)})
		return err
	}
	list := func(src, id string, max *int32, next *string) error {
		_, err := c.ListParticipantReplicas(ctx, &ivsrealtime.ListParticipantReplicasInput{
			SourceStageArn: aws.String(src), ParticipantId: aws.String(id), MaxResults: max, NextToken: next})
		return err
	}
	longARN := "arn:aws:ivs:us-east-1:123456789012:stage/" + strings.Repeat("a", 90)
	badARN := "arn:aws:ivs:us-east-1:123456789012:channel/abcdABCD1234"
	before := state(t, m, c)

	// Validation, through the SDK.
	for _, tc := range []struct {
		what string
		err  error
		want wantError
	}{
		{"source empty", start("", dest, aliceID, nil, nil), validation("sourceStageArn", "length greater than or equal to 1")},
		{"source not a stage ARN", start(badARN, dest, aliceID, nil, nil), validation("sourceStageArn", "pattern")},
		{"source too long", start(longARN, dest, aliceID, nil, nil), validation("sourceStageArn", "length less than or equal to 128")},
		{"destination empty", start(source, "", aliceID, nil, nil), validation("destinationStageArn", "length greater than or equal to 1")},
		{"destination not a stage ARN", start(source, badARN, aliceID, nil, nil), validation("destinationStageArn", "pattern")},
		{"destination too long", start(source, longARN, aliceID, nil, nil), validation("destinationStageArn", "length less than or equal to 128")},
		{"participant pattern", start(source, dest, "a_b", nil, nil), validation("participantId", "pattern")},
		{"participant too long", start(source, dest, strings.Repeat("a", 65), nil, nil), validation("participantId", "length less than or equal to 64")},
		{"window below 0", start(source, dest, aliceID, aws.Int32(-1), nil), validation("reconnectWindowSeconds", "greater than or equal to 0")},
		{"window above 300", start(source, dest, aliceID, aws.Int32(301), nil), validation("reconnectWindowSeconds", "less than or equal to 300")},
		{"attributes over 1 KB", start(source, dest, aliceID, nil, map[string]string{"k": strings.Repeat("v", 1024)}), validation("attributes", "1024")},
		{"stop: source pattern", stop(badARN, dest, aliceID), validation("sourceStageArn", "pattern")},
		{"stop: destination empty", stop(source, "", aliceID), validation("destinationStageArn", "length")},
		{"stop: participant pattern", stop(source, dest, "a b"), validation("participantId", "pattern")},
		{"list: source pattern", list(badARN, aliceID, nil, nil), validation("sourceStageArn", "pattern")},
		{"list: participant too long", list(source, strings.Repeat("a", 65), nil, nil), validation("participantId", "length")},
		{"list: maxResults 0", list(source, aliceID, aws.Int32(0), nil), validation("maxResults", "greater than or equal to 1")},
		{"list: maxResults 51", list(source, aliceID, aws.Int32(51), nil), validation("maxResults", "less than or equal to 50")},
		{"list: nextToken pattern", list(source, aliceID, nil, aws.String("not a token!")), validation("nextToken", "pattern")},
		{"list: nextToken too long", list(source, aliceID, nil, aws.String(strings.Repeat("A", 1025))), validation("nextToken", "length")},
		{"list: nextToken forged", list(source, aliceID, nil, aws.String("AXh4eHh4eHh4eHh4eHh4eHh4eA")), validation("nextToken")},
	} {
		t.Run(tc.what, func(t *testing.T) { checkError(t, tc.err, tc.want) })
	}

	// What the SDK does not send: missing members, values of the wrong
	// type.
	for _, tc := range []struct {
		op, body string
		want     wantError
	}{
		{"StartParticipantReplication", `{"destinationStageArn":"` + dest + `","participantId":"` + aliceID + `"}`, validation("sourceStageArn", "not be null")},
		{"StartParticipantReplication", `{"sourceStageArn":"` + source + `","participantId":"` + aliceID + `"}`, validation("destinationStageArn", "not be null")},
		{"StartParticipantReplication", `{"sourceStageArn":"` + source + `","destinationStageArn":"` + dest + `"}`, validation("participantId", "not be null")},
		{"StartParticipantReplication", `{}`, validation("3 validation errors")},
		{"StartParticipantReplication", `{"sourceStageArn":"` + source + `","destinationStageArn":"` + dest + `","participantId":"` + aliceID +
			`","reconnectWindowSeconds":"5"}`, validation("reconnectWindowSeconds", "integer")},
		{"StartParticipantReplication", `{"sourceStageArn":"` + source + `","destinationStageArn":"` + dest + `","participantId":"` + aliceID +
			`","attributes":{"k":1}}`, validation("attributes")},
		{"StopParticipantReplication", `{"sourceStageArn":"` + source + `","destinationStageArn":"` + dest + `"}`, validation("participantId", "not be null")},
		{"StopParticipantReplication", `{"sourceStageArn":"` + source + `","participantId":"` + aliceID + `"}`, validation("destinationStageArn", "not be null")},
		{"ListParticipantReplicas", `{"participantId":"` + aliceID + `"}`, validation("sourceStageArn", "not be null")},
		{"ListParticipantReplicas", `{"sourceStageArn":"` + source + `"}`, validation("participantId", "not be null")},
		{"ListParticipantReplicas", `{"sourceStageArn":"` + source + `","participantId":"` + aliceID + `","maxResults":1.5}`, validation("maxResults", "integer")},
		{"ListParticipantReplicas", `{"sourceStageArn":`, validation("not valid JSON")},
	} {
		checkRawError(t, signedRequest(t, m, http.MethodPost, "/"+tc.op, tc.body), tc.want)
	}
	if got := state(t, m, c); got != before {
		t.Errorf("refused requests changed the server:\nbefore %s\nafter  %s", before, got)
	}

	// Refusals.
	conflict := func(msg ...string) wantError { return wantError{"ConflictException", http.StatusConflict, msg} }
	checkError(t, start(missing, dest, aliceID, nil, nil), notFound(missing))
	checkError(t, start(source, missing, aliceID, nil, nil), notFound(missing))
	checkError(t, start(source, source, aliceID, nil, nil), conflict("cannot be replicated into the stage"))
	checkError(t, start(source, dest, aws.ToString(bob.ParticipantId), nil, nil), notFound("not publishing"))
	checkError(t, start(source, dest, aws.ToString(carol.ParticipantId), nil, nil), notFound("not publishing"))
	checkError(t, start(source, dest, "neverIssued1", nil, nil), notFound("not publishing"))
	checkError(t, stop(source, dest, aliceID), notFound("No active replication"))
	checkError(t, stop(missing, dest, aliceID), notFound(missing))
	if got := listReplicas(t, c, missing, aliceID, 0); len(got) != 0 {
		t.Errorf("replicas of an unknown stage: %v", got)
	}
	if err := start(source, dest, aliceID, nil, nil); err != nil {
		t.Fatalf("StartParticipantReplication: %v", err)
	}
	checkError(t, start(source, dest, aliceID, nil, nil), conflict("already replicated"))
	checkError(t, start(dest, other, aliceID, nil, nil), conflict("replica"))
	checkError(t, start(source, other, aliceID, nil, nil), wantError{"ServiceQuotaExceededException", http.StatusPaymentRequired, []string{"at most 1"}})
	if err := stop(source, dest, aliceID); err != nil {
		t.Fatalf("StopParticipantReplication: %v", err)
	}
	// Within the quota again.
	if err := start(source, other, aliceID, nil, nil); err != nil {
		t.Errorf("StartParticipantReplication after a stop: %v", err)
	}
}

// sessionParticipants lists the participants of the stage's active
// session, by id.
func sessionParticipants(t *testing.T, c *ivsrealtime.Client, stage string) map[string]types.ParticipantSummary {
	t.Helper()
	out := map[string]types.ParticipantSummary{}
	session := activeSession(t, c, stage)
	if session == "" {
		return out
	}
	ps, err := c.ListParticipants(testContext(t), &ivsrealtime.ListParticipantsInput{StageArn: aws.String(stage), SessionId: aws.String(session)})
	if err != nil {
		t.Fatalf("ListParticipants: %v", err)
	}
	for _, p := range ps.Participants {
		out[aws.ToString(p.ParticipantId)] = p
	}
	return out
}
