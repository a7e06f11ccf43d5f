package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/ivsrt/ivsrt"
)

// awsCLI runs the aws CLI (v1 or v2) against one test server, isolated from
// the user's configuration and credentials.
type awsCLI struct {
	t    *testing.T
	path string
	m    *Main
	env  []string
}

func newAWSCLI(t *testing.T) *awsCLI {
	t.Helper()
	path, err := exec.LookPath("aws")
	if err != nil {
		t.Skip("the aws CLI is not on PATH")
	}
	return &awsCLI{t: t, path: path, env: cliEnv()}
}

// exec runs `aws ivs-realtime args...` and returns what it printed.
func (a *awsCLI) exec(ctx context.Context, args ...string) (stdout, stderr []byte, err error) {
	full := append([]string{"ivs-realtime", "--endpoint-url", "http://" + a.m.Addr(), "--output", "json"}, args...)
	cmd := exec.CommandContext(ctx, a.path, full...)
	cmd.Env = a.env
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err = cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}

// run runs the CLI, which must succeed, and decodes its JSON output into v;
// with v nil, the command must print nothing.
func (a *awsCLI) run(ctx context.Context, v any, args ...string) {
	a.t.Helper()
	stdout, stderr, err := a.exec(ctx, args...)
	if err != nil {
		a.t.Fatalf("aws %s: %v\n%s", strings.Join(args, " "), err, stderr)
	}
	if v == nil {
		if len(bytes.TrimSpace(stdout)) != 0 {
			a.t.Errorf("aws %s: output got %s, want none", args[0], stdout)
		}
		return
	}
	if err := json.Unmarshal(stdout, v); err != nil {
		a.t.Fatalf("aws %s: output %s: %v", args[0], stdout, err)
	}
}

// cliStage is a stage as the CLI prints it.
type cliStage struct {
	Arn                                   string            `json:"arn"`
	Name                                  string            `json:"name"`
	ActiveSessionID                       string            `json:"activeSessionId"`
	Tags                                  map[string]string `json:"tags"`
	AutoParticipantRecordingConfiguration any               `json:"autoParticipantRecordingConfiguration"`
	Endpoints                             map[string]string `json:"endpoints"`
}

type cliToken struct {
	ParticipantID  string            `json:"participantId"`
	Token          string            `json:"token"`
	UserID         string            `json:"userId"`
	Attributes     map[string]string `json:"attributes"`
	Duration       int               `json:"duration"`
	Capabilities   []string          `json:"capabilities"`
	ExpirationTime string            `json:"expirationTime"`
}

// checkCLIToken checks a token the CLI printed, issued between before and
// after.
func checkCLIToken(t *testing.T, got cliToken, want cliToken, before, after time.Time) {
	t.Helper()
	if !participantIDPattern.MatchString(got.ParticipantID) {
		t.Errorf("participantId got %v, want 12 characters [a-zA-Z0-9]", got.ParticipantID)
	}
	if strings.Count(got.Token, ".") != 2 {
		t.Errorf("token got %q, want a JWT", got.Token)
	}
	exp, err := time.Parse(time.RFC3339Nano, got.ExpirationTime)
	d := time.Duration(want.Duration) * time.Minute
	if err != nil || exp.Before(before.Add(d).Truncate(time.Second)) || exp.After(after.Add(d)) {
		t.Errorf("expirationTime got %v (%v), want %v minutes after issue", got.ExpirationTime, err, want.Duration)
	}
	got.ParticipantID, got.Token, got.ExpirationTime = "", "", ""
	checkJSON(t, "participant token", got, want)
}

// TestAWSCLI runs a whole scenario through the aws CLI: every operation,
// the CLI's own pagination, and an error as the CLI reports it.
func TestAWSCLI(t *testing.T) {
	if testing.Short() {
		t.Skip("slow: runs the aws CLI some twenty times")
	}
	cli := newAWSCLI(t)
	t.Parallel()
	m, c := startServer(t)
	withTestStorage(t, m)
	cli.m = m
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	// create-stage with tags and a token configuration.
	var created struct {
		Stage             cliStage   `json:"stage"`
		ParticipantTokens []cliToken `json:"participantTokens"`
	}
	before := time.Now()
	cli.run(ctx, &created, "create-stage", "--name", "cli-stage",
		"--tags", "env=test,team=video,owner=cli",
		"--participant-token-configurations", `[{"userId":"alice","duration":60,"capabilities":["PUBLISH"],"attributes":{"role":"host"}}]`)
	after := time.Now()
	st := created.Stage
	arn := st.Arn
	if !stageARNPattern.MatchString(arn) {
		t.Fatalf("arn got %v, want %v", arn, stageARNPattern)
	}
	checkJSON(t, "created stage", st, cliStage{
		Arn:       arn,
		Name:      "cli-stage",
		Tags:      map[string]string{"env": "test", "team": "video", "owner": "cli"},
		Endpoints: map[string]string{"events": "ws://" + m.Addr() + "/events", "whip": "http://" + m.Addr() + "/whip", "rtmp": m.rtmpURL},
	})
	if len(created.ParticipantTokens) != 1 {
		t.Fatalf("participantTokens got %v, want 1", len(created.ParticipantTokens))
	}
	alice := created.ParticipantTokens[0]
	checkCLIToken(t, alice, cliToken{UserID: "alice", Attributes: map[string]string{"role": "host"}, Duration: 60, Capabilities: []string{"PUBLISH"}}, before, after)

	// get-stage, update-stage.
	var got struct{ Stage cliStage }
	cli.run(ctx, &got, "get-stage", "--arn", arn)
	checkJSON(t, "get-stage", got.Stage, st)

	var updated struct{ Stage cliStage }
	cli.run(ctx, &updated, "update-stage", "--arn", arn, "--name", "cli-renamed",
		"--auto-participant-recording-configuration", `{"storageConfigurationArn":"`+storageARN+`","mediaTypes":["AUDIO_ONLY"]}`)
	want := st
	want.Name = "cli-renamed"
	json.Unmarshal([]byte(`{"storageConfigurationArn":"`+storageARN+`","mediaTypes":["AUDIO_ONLY"],`+
		`"thumbnailConfiguration":{"targetIntervalSeconds":60,"storage":["SEQUENTIAL"],"recordingMode":"INTERVAL"},`+
		`"recordingReconnectWindowSeconds":0,"hlsConfiguration":{"targetSegmentDurationSeconds":6},"recordParticipantReplicas":true}`),
		&want.AutoParticipantRecordingConfiguration)
	checkJSON(t, "update-stage", updated.Stage, want)

	// list-stages, two at a time. botocore has no paginator for ListStages,
	// so the CLI takes the API's own --max-results and --next-token (not
	// --max-items) and prints nextToken as the server sent it.
	extra1, extra2 := createStage(t, c, "cli-extra-1"), createStage(t, c, "cli-extra-2")
	var page1, page2 struct {
		Stages    []cliStage `json:"stages"`
		NextToken string     `json:"nextToken"`
	}
	cli.run(ctx, &page1, "list-stages", "--max-results", "2")
	if page1.NextToken == "" {
		t.Fatalf("list-stages --max-results 2: no nextToken, want one")
	}
	cli.run(ctx, &page2, "list-stages", "--max-results", "2", "--next-token", page1.NextToken)
	var listed []string
	for _, s := range append(page1.Stages, page2.Stages...) {
		listed = append(listed, s.Arn+" "+s.Name)
	}
	checkJSON(t, "list-stages", listed, []string{arn + " cli-renamed", extra1 + " cli-extra-1", extra2 + " cli-extra-2"})
	if page2.NextToken != "" {
		t.Errorf("last page: nextToken got %v, want none", page2.NextToken)
	}

	// create-participant-token with attributes.
	var tok struct{ ParticipantToken cliToken }
	before = time.Now()
	cli.run(ctx, &tok, "create-participant-token", "--stage-arn", arn, "--user-id", "bob",
		"--attributes", "color=red,seat=3", "--capabilities", "SUBSCRIBE", "--duration", "30")
	after = time.Now()
	bob := tok.ParticipantToken
	checkCLIToken(t, bob, cliToken{UserID: "bob", Attributes: map[string]string{"color": "red", "seat": "3"}, Duration: 30, Capabilities: []string{"SUBSCRIBE"}}, before, after)

	// tag-resource, list-tags-for-resource, untag-resource with two keys.
	var tags struct{ Tags map[string]string }
	cli.run(ctx, nil, "tag-resource", "--resource-arn", arn, "--tags", "extra=1,owner=ops")
	cli.run(ctx, &tags, "list-tags-for-resource", "--resource-arn", arn)
	checkJSON(t, "tags", tags.Tags, map[string]string{"env": "test", "team": "video", "owner": "ops", "extra": "1"})
	cli.run(ctx, nil, "untag-resource", "--resource-arn", arn, "--tag-keys", "env", "team")
	var untagged struct{ Tags map[string]string }
	cli.run(ctx, &untagged, "list-tags-for-resource", "--resource-arn", arn)
	checkJSON(t, "tags after untag", untagged.Tags, map[string]string{"owner": "ops", "extra": "1"})

	// import-public-key from a PEM file's text, get-, list- (which the CLI
	// pages through by itself, botocore having a paginator for it), tags,
	// and delete-public-key.
	type cliPublicKey struct {
		Arn               string            `json:"arn"`
		Name              string            `json:"name"`
		PublicKeyMaterial string            `json:"publicKeyMaterial,omitempty"`
		Fingerprint       string            `json:"fingerprint,omitempty"`
		Tags              map[string]string `json:"tags"`
	}
	var imported struct{ PublicKey cliPublicKey }
	cli.run(ctx, &imported, "import-public-key", "--public-key-material", fixedKeyPEM, "--name", "cli-key", "--tags", "env=test")
	pk := imported.PublicKey
	if !publicKeyARNPattern.MatchString(pk.Arn) {
		t.Errorf("import-public-key: arn %q, want %v", pk.Arn, publicKeyARNPattern)
	}
	checkJSON(t, "import-public-key", pk, cliPublicKey{Arn: pk.Arn, Name: "cli-key", PublicKeyMaterial: fixedKeyPEM,
		Fingerprint: fixedKeyFingerprint, Tags: map[string]string{"env": "test"}})
	var gotKey struct{ PublicKey cliPublicKey }
	cli.run(ctx, &gotKey, "get-public-key", "--arn", pk.Arn)
	checkJSON(t, "get-public-key", gotKey.PublicKey, pk)
	_, otherPEM := newKeyPair(t)
	var second struct{ PublicKey cliPublicKey }
	cli.run(ctx, &second, "import-public-key", "--public-key-material", otherPEM)
	var keys struct {
		PublicKeys []cliPublicKey `json:"publicKeys"`
		NextToken  string         `json:"NextToken"`
	}
	cli.run(ctx, &keys, "list-public-keys", "--page-size", "1")
	checkJSON(t, "list-public-keys --page-size 1", keys, struct {
		PublicKeys []cliPublicKey `json:"publicKeys"`
		NextToken  string         `json:"NextToken"`
	}{PublicKeys: []cliPublicKey{{Arn: pk.Arn, Name: "cli-key", Tags: map[string]string{"env": "test"}},
		{Arn: second.PublicKey.Arn, Name: "", Tags: map[string]string{}}}})
	cli.run(ctx, &keys, "list-public-keys", "--max-items", "1")
	if len(keys.PublicKeys) != 1 || keys.NextToken == "" {
		t.Errorf("list-public-keys --max-items 1: got %v, want one key and a NextToken", jsonOf(keys))
	}
	cli.run(ctx, nil, "tag-resource", "--resource-arn", pk.Arn, "--tags", "team=video")
	var keyTags struct{ Tags map[string]string }
	cli.run(ctx, &keyTags, "list-tags-for-resource", "--resource-arn", pk.Arn)
	checkJSON(t, "tags of the public key", keyTags.Tags, map[string]string{"env": "test", "team": "video"})
	wantConflict := "An error occurred (ConflictException) when calling the ImportPublicKey operation: This public key (fingerprint " +
		fixedKeyFingerprint + ") was already imported as " + pk.Arn
	if stdout, stderr, err := cli.exec(ctx, "import-public-key", "--public-key-material", fixedKeyPEM); err == nil ||
		!strings.Contains(string(stderr), wantConflict) {
		t.Errorf("import-public-key of the same key: %v, stdout %s, stderr %s, want %q", err, stdout, stderr, wantConflict)
	}
	cli.run(ctx, nil, "delete-public-key", "--arn", pk.Arn)
	if _, err := c.GetPublicKey(ctx, &ivsrealtime.GetPublicKeyInput{Arn: aws.String(pk.Arn)}); err == nil {
		t.Errorf("GetPublicKey after delete-public-key: got the key, want ResourceNotFoundException")
	}

	// A session, seeded as the media plane would record it.
	stage := ivsrt.StageARN(arn)
	joined := &ivsrt.Event{StageARN: stage, Name: ivsrt.EventJoined, ParticipantID: ivsrt.ParticipantID(alice.ParticipantID),
		UserID: "alice", Attributes: alice.Attributes, Protocol: "WHIP"}
	record(t, m,
		joined,
		&ivsrt.Event{StageARN: stage, Name: ivsrt.EventPublishStarted, ParticipantID: ivsrt.ParticipantID(alice.ParticipantID)},
		&ivsrt.Event{StageARN: stage, Name: ivsrt.EventJoined, ParticipantID: ivsrt.ParticipantID(bob.ParticipantID), UserID: "bob", Attributes: bob.Attributes},
		&ivsrt.Event{StageARN: stage, Name: ivsrt.EventSubscribeStarted, ParticipantID: ivsrt.ParticipantID(bob.ParticipantID),
			RemoteParticipantID: ivsrt.ParticipantID(alice.ParticipantID)},
		&ivsrt.Event{StageARN: stage, Name: ivsrt.EventLeft, ParticipantID: ivsrt.ParticipantID(bob.ParticipantID)},
	)
	session := string(joined.SessionID)

	type cliSession struct {
		SessionID string `json:"sessionId"`
		StartTime string `json:"startTime"`
		EndTime   string `json:"endTime"`
	}
	var sessions struct{ StageSessions []cliSession }
	cli.run(ctx, &sessions, "list-stage-sessions", "--stage-arn", arn)
	if len(sessions.StageSessions) != 1 || sessions.StageSessions[0].SessionID != session ||
		sessions.StageSessions[0].StartTime == "" || sessions.StageSessions[0].EndTime != "" {
		t.Errorf("list-stage-sessions got %v, want one active session %v", jsonOf(sessions), session)
	}
	var sess struct{ StageSession cliSession }
	cli.run(ctx, &sess, "get-stage-session", "--stage-arn", arn, "--session-id", session)
	if len(sessions.StageSessions) == 1 {
		checkJSON(t, "get-stage-session", sess.StageSession, sessions.StageSessions[0])
	}

	type cliParticipant struct {
		ParticipantID  string            `json:"participantId"`
		UserID         string            `json:"userId"`
		State          string            `json:"state"`
		Published      bool              `json:"published"`
		Attributes     map[string]string `json:"attributes"`
		Protocol       string            `json:"protocol"`
		RecordingState string            `json:"recordingState"`
	}
	var participants struct{ Participants []cliParticipant }
	cli.run(ctx, &participants, "list-participants", "--stage-arn", arn, "--session-id", session)
	checkJSON(t, "list-participants", participants.Participants, []cliParticipant{
		{ParticipantID: alice.ParticipantID, UserID: "alice", State: "CONNECTED", Published: true, RecordingState: "DISABLED"},
		{ParticipantID: bob.ParticipantID, UserID: "bob", State: "DISCONNECTED", RecordingState: "DISABLED"},
	})
	var unpublished struct{ Participants []cliParticipant }
	cli.run(ctx, &unpublished, "list-participants", "--stage-arn", arn, "--session-id", session, "--no-filter-by-published")
	checkJSON(t, "list-participants --no-filter-by-published", unpublished.Participants, []cliParticipant{
		{ParticipantID: bob.ParticipantID, UserID: "bob", State: "DISCONNECTED", RecordingState: "DISABLED"},
	})
	var participant struct{ Participant cliParticipant }
	cli.run(ctx, &participant, "get-participant", "--stage-arn", arn, "--session-id", session, "--participant-id", alice.ParticipantID)
	checkJSON(t, "get-participant", participant.Participant, cliParticipant{
		ParticipantID: alice.ParticipantID, UserID: "alice", State: "CONNECTED", Published: true,
		Attributes: map[string]string{"role": "host"}, Protocol: "WHIP", RecordingState: "DISABLED",
	})

	var events struct {
		Events []struct {
			Name                string `json:"name"`
			ParticipantID       string `json:"participantId"`
			RemoteParticipantID string `json:"remoteParticipantId,omitempty"`
		}
	}
	cli.run(ctx, &events, "list-participant-events", "--stage-arn", arn, "--session-id", session, "--participant-id", bob.ParticipantID)
	checkJSON(t, "list-participant-events", events.Events, []map[string]string{
		{"name": "JOINED", "participantId": bob.ParticipantID},
		{"name": "SUBSCRIBE_STARTED", "participantId": bob.ParticipantID, "remoteParticipantId": alice.ParticipantID},
		{"name": "LEFT", "participantId": bob.ParticipantID},
	})

	// disconnect-participant, delete-stage.
	cli.run(ctx, nil, "disconnect-participant", "--stage-arn", arn, "--participant-id", alice.ParticipantID, "--reason", "Removed by the moderator")
	revoked, err := m.DB.GetParticipantToken(ctx, ivsrt.ParticipantID(alice.ParticipantID))
	if err != nil {
		t.Fatalf("stored token: %v", err)
	}
	if !revoked.Revoked() || revoked.RevokeReason != "Removed by the moderator" {
		t.Errorf("revocation got %v %q, want %v %q", revoked.Revoked(), revoked.RevokeReason, true, "Removed by the moderator")
	}
	cli.run(ctx, nil, "delete-stage", "--arn", arn)
	if _, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(arn)}); err == nil {
		t.Errorf("GetStage after delete-stage: got the stage, want ResourceNotFoundException")
	}

	// An error, as the CLI reports it.
	stdout, stderr, err := cli.exec(ctx, "get-stage", "--arn", arn)
	if err == nil {
		t.Errorf("get-stage of a deleted stage: exit 0 with %s, want a failure", stdout)
	}
	wantErr := "An error occurred (ResourceNotFoundException) when calling the GetStage operation: Stage not found: " + arn
	if !strings.Contains(string(stderr), wantErr) {
		t.Errorf("stderr got %q, want it to contain %q", stderr, wantErr)
	}
}
