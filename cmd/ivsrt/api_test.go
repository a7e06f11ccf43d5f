package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/secrets"
	"github.com/ivsrt/ivsrt/token"
)

// The tests in this file run the whole server (Main) on 127.0.0.1 and talk
// to it through the real AWS SDK client, or through raw signed requests
// where the SDK would refuse to send what a test needs.

const (
	// missingStage is a well-formed ARN no test creates.
	missingStage = "arn:aws:ivs:us-east-1:123456789012:stage/doesNotExist"
	// missingSession and missingParticipant are well-formed ids that no
	// store returns.
	missingSession     = "st-noSuchSession"
	missingParticipant = "noSuchPartic"

	storageARN = "arn:aws:ivs:us-east-1:123456789012:storage-configuration/abcdABCD1234"
)

var participantIDPattern = regexp.MustCompile(`^[a-zA-Z0-9]{12}$`)

// jsonOf shows v as JSON, so that structs of pointers compare and print
// by value.
func jsonOf(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprintf("<unencodable %T: %v>", v, err)
	}
	return string(b)
}

func checkJSON(t testing.TB, what string, got, want any) {
	t.Helper()
	if g, w := jsonOf(got), jsonOf(want); g != w {
		t.Errorf("%s: got %v, want %v", what, g, w)
	}
}

func tagsPath(arn string) string { return "/tags/" + url.PathEscape(arn) }

// wantToken is what a returned participant token must carry.
type wantToken struct {
	stageARN     string
	userID       string
	attributes   map[string]string
	duration     int32
	capabilities []types.ParticipantTokenCapability
}

// checkToken checks a returned participant token field by field, and the
// JWT it carries with the server's own key.
func checkToken(t testing.TB, m *Main, got types.ParticipantToken, want wantToken, issuedAfter, issuedBefore time.Time) {
	t.Helper()
	id := aws.ToString(got.ParticipantId)
	if !participantIDPattern.MatchString(id) {
		t.Errorf("participantId got %v, want 12 characters [a-zA-Z0-9]", id)
	}
	if g := aws.ToString(got.UserId); g != want.userID {
		t.Errorf("userId got %v, want %v", g, want.userID)
	}
	if len(got.Attributes) != 0 || len(want.attributes) != 0 {
		checkJSON(t, "attributes", got.Attributes, want.attributes)
	}
	if g := aws.ToInt32(got.Duration); g != want.duration {
		t.Errorf("duration got %v, want %v", g, want.duration)
	}
	checkJSON(t, "capabilities", got.Capabilities, want.capabilities)
	if got.ExpirationTime == nil {
		t.Errorf("expirationTime missing")
	} else {
		d := time.Duration(want.duration) * time.Minute
		lo, hi := issuedAfter.Add(d).Truncate(time.Millisecond), issuedBefore.Add(d)
		if exp := *got.ExpirationTime; exp.Before(lo) || exp.After(hi) {
			t.Errorf("expirationTime got %v, want between %v and %v", exp, lo, hi)
		}
	}

	// The token is an ES384 JWT signed with the data folder's key.
	key, err := token.LoadOrCreateKey(filepath.Join(m.Config.DataDir, "token-signing-key.pem"))
	if err != nil {
		t.Fatalf("load token signing key: %v", err)
	}
	issuer := token.NewIssuer(key)
	claims, err := issuer.Verify(testContext(t), aws.ToString(got.Token))
	if err != nil {
		t.Errorf("verify token: %v", err)
		return
	}
	if string(claims.ParticipantID) != id {
		t.Errorf("token participant id got %v, want %v", claims.ParticipantID, id)
	}
	if string(claims.StageARN) != want.stageARN {
		t.Errorf("token stage got %v, want %v", claims.StageARN, want.stageARN)
	}
	if claims.UserID != want.userID {
		t.Errorf("token user id got %v, want %v", claims.UserID, want.userID)
	}
	if len(claims.Attributes) != 0 || len(want.attributes) != 0 {
		checkJSON(t, "token attributes", claims.Attributes, want.attributes)
	}
	checkJSON(t, "token capabilities", claims.Capabilities, want.capabilities)
	if got.ExpirationTime != nil && claims.ExpirationTime.Unix() != got.ExpirationTime.Unix() {
		t.Errorf("token exp got %v, want %v", claims.ExpirationTime, got.ExpirationTime)
	}

	parts := strings.Split(aws.ToString(got.Token), ".")
	var header struct{ Alg, Kid string }
	var payload struct {
		Topic     string `json:"topic"`
		EventsURL string `json:"events_url"`
		WHIPURL   string `json:"whip_url"`
		Version   string `json:"version"`
	}
	for i, v := range []any{&header, &payload} {
		b, err := base64.RawURLEncoding.DecodeString(parts[i])
		if err != nil || json.Unmarshal(b, v) != nil {
			t.Fatalf("token part %d is not base64url JSON: %q", i, parts[i])
		}
	}
	if header.Alg != "ES384" || header.Kid != issuer.KeyID() {
		t.Errorf("token header got alg %v kid %v, want alg %v kid %v", header.Alg, header.Kid, "ES384", issuer.KeyID())
	}
	wantPayload := struct{ Topic, EventsURL, WHIPURL, Version string }{
		ivsrt.StageARN(want.stageARN).ID(), "ws://" + m.Addr() + "/events", "http://" + m.Addr() + "/whip", "1.0",
	}
	checkJSON(t, "token claims", struct{ Topic, EventsURL, WHIPURL, Version string }(payload), wantPayload)
}

var bothCapabilities = []types.ParticipantTokenCapability{types.ParticipantTokenCapabilityPublish, types.ParticipantTokenCapabilitySubscribe}

func TestCreateStage(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	withTestStorage(t, m)
	ctx := testContext(t)

	t.Run("all fields", func(t *testing.T) {
		capabilities := [][]types.ParticipantTokenCapability{
			{types.ParticipantTokenCapabilityPublish},
			{types.ParticipantTokenCapabilitySubscribe},
			nil, // default: both
			{types.ParticipantTokenCapabilitySubscribe, types.ParticipantTokenCapabilityPublish},
		}
		configs := make([]types.ParticipantTokenConfiguration, ivsrt.MaxTokenConfigurations)
		wants := make([]wantToken, len(configs))
		for i := range configs {
			configs[i] = types.ParticipantTokenConfiguration{
				UserId:       aws.String(fmt.Sprintf("user-%02d", i)),
				Attributes:   map[string]string{"seat": strconv.Itoa(i), "städte": "Zürich"},
				Capabilities: capabilities[i%len(capabilities)],
			}
			wants[i] = wantToken{userID: fmt.Sprintf("user-%02d", i), attributes: configs[i].Attributes, duration: 720, capabilities: bothCapabilities}
			if i%2 == 0 {
				configs[i].Duration = aws.Int32(int32(30 * (i + 1)))
				wants[i].duration = int32(30 * (i + 1))
			}
			if caps := configs[i].Capabilities; len(caps) == 1 {
				wants[i].capabilities = caps
			}
		}
		tags := map[string]string{"env": "test", "team": "video", "empty": ""}
		before := time.Now()
		out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{
			Name:                           aws.String("main-Stage_1"),
			Tags:                           tags,
			ParticipantTokenConfigurations: configs,
			AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{
				StorageConfigurationArn: aws.String(storageARN),
			},
		})
		after := time.Now()
		if err != nil {
			t.Fatalf("CreateStage: %v", err)
		}
		st := out.Stage
		arn := aws.ToString(st.Arn)
		if !stageARNPattern.MatchString(arn) {
			t.Errorf("arn got %v, want %v", arn, stageARNPattern)
		}
		if got, want := aws.ToString(st.Name), "main-Stage_1"; got != want {
			t.Errorf("name got %v, want %v", got, want)
		}
		checkJSON(t, "tags", st.Tags, tags)
		if st.ActiveSessionId != nil {
			t.Errorf("activeSessionId got %v, want none", *st.ActiveSessionId)
		}
		checkJSON(t, "endpoints", st.Endpoints, &types.StageEndpoints{
			Events: aws.String("ws://" + m.Addr() + "/events"),
			Whip:   aws.String("http://" + m.Addr() + "/whip"),
			Rtmp:   aws.String(m.rtmpURL),
		})
		// Left-out recording settings come back with the documented defaults.
		checkJSON(t, "autoParticipantRecordingConfiguration", st.AutoParticipantRecordingConfiguration, &types.AutoParticipantRecordingConfiguration{
			StorageConfigurationArn: aws.String(storageARN),
			MediaTypes:              []types.ParticipantRecordingMediaType{types.ParticipantRecordingMediaTypeAudioVideo},
			ThumbnailConfiguration: &types.ParticipantThumbnailConfiguration{
				TargetIntervalSeconds: aws.Int32(60),
				Storage:               []types.ThumbnailStorageType{types.ThumbnailStorageTypeSequential},
				RecordingMode:         types.ThumbnailRecordingModeInterval,
			},
			HlsConfiguration:          &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(6)},
			RecordParticipantReplicas: true,
		})

		if got, want := len(out.ParticipantTokens), len(configs); got != want {
			t.Fatalf("participantTokens got %v, want %v", got, want)
		}
		seen := map[string]bool{}
		for i, tok := range out.ParticipantTokens {
			wants[i].stageARN = arn
			checkToken(t, m, tok, wants[i], before, after)
			if id := aws.ToString(tok.ParticipantId); seen[id] {
				t.Errorf("participantId %v returned twice", id)
			} else {
				seen[id] = true
			}
		}

		got, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: st.Arn})
		if err != nil {
			t.Fatalf("GetStage: %v", err)
		}
		checkJSON(t, "GetStage", got.Stage, st)
	})

	t.Run("no fields", func(t *testing.T) {
		out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{})
		if err != nil {
			t.Fatalf("CreateStage: %v", err)
		}
		if arn := aws.ToString(out.Stage.Arn); !stageARNPattern.MatchString(arn) {
			t.Errorf("arn got %v, want %v", arn, stageARNPattern)
		}
		if got := aws.ToString(out.Stage.Name); got != "" {
			t.Errorf("name got %v, want %v", got, "")
		}
		if out.Stage.Tags == nil || len(out.Stage.Tags) != 0 {
			t.Errorf("tags got %v, want {}", out.Stage.Tags)
		}
		if out.Stage.AutoParticipantRecordingConfiguration != nil {
			t.Errorf("autoParticipantRecordingConfiguration got %v, want none", jsonOf(out.Stage.AutoParticipantRecordingConfiguration))
		}
		if out.ParticipantTokens == nil || len(out.ParticipantTokens) != 0 {
			t.Errorf("participantTokens got %v, want []", out.ParticipantTokens)
		}
	})

	t.Run("limits", func(t *testing.T) {
		tags := map[string]string{"aws": "not a prefix", "ws:x": "fine"}
		for i := len(tags); i < ivsrt.MaxTagsPerResource; i++ {
			tags[fmt.Sprintf("k%02d", i)] = strings.Repeat("v", ivsrt.MaxTagValueLength)
		}
		tags[strings.Repeat("k", ivsrt.MaxTagKeyLength)] = "longest key"
		delete(tags, "k02")
		name := strings.Repeat("n", ivsrt.MaxStageNameLength)
		out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String(name), Tags: tags})
		if err != nil {
			t.Fatalf("CreateStage: %v", err)
		}
		if got := aws.ToString(out.Stage.Name); got != name {
			t.Errorf("name got %v, want %v", got, name)
		}
		checkJSON(t, "tags", out.Stage.Tags, tags)
	})

	t.Run("recording round trip", func(t *testing.T) {
		rec := &types.AutoParticipantRecordingConfiguration{
			StorageConfigurationArn:         aws.String(storageARN),
			MediaTypes:                      []types.ParticipantRecordingMediaType{types.ParticipantRecordingMediaTypeAudioOnly},
			RecordingReconnectWindowSeconds: 300,
			RecordParticipantReplicas:       true,
			HlsConfiguration:                &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(2)},
			ThumbnailConfiguration: &types.ParticipantThumbnailConfiguration{
				TargetIntervalSeconds: aws.Int32(86400),
				Storage:               []types.ThumbnailStorageType{types.ThumbnailStorageTypeLatest, types.ThumbnailStorageTypeSequential},
				RecordingMode:         types.ThumbnailRecordingModeDisabled,
			},
		}
		out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{AutoParticipantRecordingConfiguration: rec})
		if err != nil {
			t.Fatalf("CreateStage: %v", err)
		}
		checkJSON(t, "CreateStage recording", out.Stage.AutoParticipantRecordingConfiguration, rec)
		got, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: out.Stage.Arn})
		if err != nil {
			t.Fatalf("GetStage: %v", err)
		}
		checkJSON(t, "GetStage recording", got.Stage.AutoParticipantRecordingConfiguration, rec)
	})
}

func TestStageLifecycle(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	withTestStorage(t, m)
	ctx := testContext(t)

	created, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{
		Name: aws.String("alpha"),
		Tags: map[string]string{"env": "test"},
	})
	if err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	arn := created.Stage.Arn
	other := createStage(t, c, "other")

	got, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: arn})
	if err != nil {
		t.Fatalf("GetStage: %v", err)
	}
	checkJSON(t, "GetStage", got.Stage, created.Stage)

	recorded := &types.AutoParticipantRecordingConfiguration{
		StorageConfigurationArn: aws.String(storageARN),
		MediaTypes:              []types.ParticipantRecordingMediaType{types.ParticipantRecordingMediaTypeAudioOnly},
		ThumbnailConfiguration: &types.ParticipantThumbnailConfiguration{
			TargetIntervalSeconds: aws.Int32(60),
			Storage:               []types.ThumbnailStorageType{types.ThumbnailStorageTypeSequential},
			RecordingMode:         types.ThumbnailRecordingModeInterval,
		},
		HlsConfiguration:          &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(6)},
		RecordParticipantReplicas: true,
	}
	updates := []struct {
		name     string
		in       ivsrealtime.UpdateStageInput
		wantName string
		wantRec  *types.AutoParticipantRecordingConfiguration
	}{
		{"name", ivsrealtime.UpdateStageInput{Name: aws.String("beta")}, "beta", nil},
		{"recording", ivsrealtime.UpdateStageInput{AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{
			StorageConfigurationArn: aws.String(storageARN),
			MediaTypes:              []types.ParticipantRecordingMediaType{types.ParticipantRecordingMediaTypeAudioOnly},
		}}, "beta", recorded},
		{"nothing", ivsrealtime.UpdateStageInput{}, "beta", recorded},
		{"both", ivsrealtime.UpdateStageInput{Name: aws.String("gamma-1_x"), AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{
			StorageConfigurationArn: aws.String(""),
			MediaTypes:              []types.ParticipantRecordingMediaType{types.ParticipantRecordingMediaTypeNone},
		}}, "gamma-1_x", &types.AutoParticipantRecordingConfiguration{
			StorageConfigurationArn:   aws.String(""),
			MediaTypes:                []types.ParticipantRecordingMediaType{types.ParticipantRecordingMediaTypeNone},
			ThumbnailConfiguration:    recorded.ThumbnailConfiguration,
			HlsConfiguration:          recorded.HlsConfiguration,
			RecordParticipantReplicas: true,
		}},
	}
	for _, tt := range updates {
		t.Run("update "+tt.name, func(t *testing.T) {
			in := tt.in
			in.Arn = arn
			out, err := c.UpdateStage(ctx, &in)
			if err != nil {
				t.Fatalf("UpdateStage: %v", err)
			}
			want := &types.Stage{
				Arn:                                   arn,
				Name:                                  aws.String(tt.wantName),
				Tags:                                  map[string]string{"env": "test"},
				AutoParticipantRecordingConfiguration: tt.wantRec,
				Endpoints:                             created.Stage.Endpoints,
			}
			checkJSON(t, "UpdateStage", out.Stage, want)
			got, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: arn})
			if err != nil {
				t.Fatalf("GetStage: %v", err)
			}
			checkJSON(t, "GetStage", got.Stage, want)
		})
	}

	t.Run("list", func(t *testing.T) {
		out, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{})
		if err != nil {
			t.Fatalf("ListStages: %v", err)
		}
		checkJSON(t, "ListStages", out.Stages, []types.StageSummary{
			{Arn: arn, Name: aws.String("gamma-1_x"), Tags: map[string]string{"env": "test"}},
			{Arn: aws.String(other), Name: aws.String("other"), Tags: map[string]string{}},
		})
		if out.NextToken != nil {
			t.Errorf("nextToken got %v, want none", *out.NextToken)
		}
	})

	t.Run("delete", func(t *testing.T) {
		// A stage with tokens, a session and participants goes with all of them.
		tok := createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: arn})
		record(t, m, &ivsrt.Event{StageARN: ivsrt.StageARN(*arn), Name: ivsrt.EventJoined, ParticipantID: ivsrt.ParticipantID(*tok.ParticipantId)})
		tokensBefore := countRows(t, m, "participant_tokens")

		if _, err := c.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: arn}); err != nil {
			t.Fatalf("DeleteStage: %v", err)
		}
		_, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: arn})
		checkError(t, err, notFound("Stage not found: "+*arn))
		_, err = c.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: arn})
		checkError(t, err, notFound("Stage not found: "+*arn))
		_, err = c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: arn})
		checkError(t, err, notFound("Resource not found: "+*arn))

		list, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{})
		if err != nil {
			t.Fatalf("ListStages: %v", err)
		}
		checkJSON(t, "ListStages", list.Stages, []types.StageSummary{{Arn: aws.String(other), Name: aws.String("other"), Tags: map[string]string{}}})
		sessions, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: arn})
		if err != nil {
			t.Fatalf("ListStageSessions: %v", err)
		}
		if len(sessions.StageSessions) != 0 {
			t.Errorf("sessions of a deleted stage got %v, want none", jsonOf(sessions.StageSessions))
		}
		if got, want := countRows(t, m, "participant_tokens"), tokensBefore-1; got != want {
			t.Errorf("participant tokens got %v, want %v", got, want)
		}
		for _, table := range []string{"stage_sessions", "participants", "participant_events"} {
			if got := countRows(t, m, table); got != 0 {
				t.Errorf("%s rows got %v, want 0", table, got)
			}
		}
		// The tags went with the stage: none of them is left to count.
		if got, want := countRows(t, m, "tags"), 0; got != want {
			t.Errorf("tags rows got %v, want %v", got, want)
		}
	})
}

func TestCreateParticipantToken(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	ctx := testContext(t)
	arn := createStage(t, c, "tokens")

	// 1024 bytes of attributes, most of them in three-byte characters.
	attrs := map[string]string{"k": strings.Repeat("€", 341)}
	tests := []struct {
		name string
		in   ivsrealtime.CreateParticipantTokenInput
		want wantToken
	}{
		{"defaults", ivsrealtime.CreateParticipantTokenInput{},
			wantToken{duration: 720, capabilities: bothCapabilities}},
		{"all fields", ivsrealtime.CreateParticipantTokenInput{
			Duration:     aws.Int32(90),
			UserId:       aws.String("user/ünïcödé 42"),
			Attributes:   map[string]string{"role": "host", "emoji": "🎥"},
			Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe},
		}, wantToken{userID: "user/ünïcödé 42", attributes: map[string]string{"role": "host", "emoji": "🎥"}, duration: 90,
			capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}}},
		{"publish only", ivsrealtime.CreateParticipantTokenInput{
			Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilityPublish},
		}, wantToken{duration: 720, capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilityPublish}}},
		{"shortest", ivsrealtime.CreateParticipantTokenInput{Duration: aws.Int32(1)},
			wantToken{duration: 1, capabilities: bothCapabilities}},
		{"limits", ivsrealtime.CreateParticipantTokenInput{
			Duration:   aws.Int32(ivsrt.MaxTokenDurationMinutes),
			UserId:     aws.String(strings.Repeat("ü", ivsrt.MaxUserIDLength)),
			Attributes: attrs,
		}, wantToken{userID: strings.Repeat("ü", ivsrt.MaxUserIDLength), attributes: attrs, duration: ivsrt.MaxTokenDurationMinutes, capabilities: bothCapabilities}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := tt.in
			in.StageArn = aws.String(arn)
			before := time.Now()
			out, err := c.CreateParticipantToken(ctx, &in)
			after := time.Now()
			if err != nil {
				t.Fatalf("CreateParticipantToken: %v", err)
			}
			want := tt.want
			want.stageARN = arn
			checkToken(t, m, *out.ParticipantToken, want, before, after)

			stored, err := m.DB.GetParticipantToken(ctx, ivsrt.ParticipantID(aws.ToString(out.ParticipantToken.ParticipantId)))
			if err != nil {
				t.Fatalf("stored token: %v", err)
			}
			if string(stored.StageARN) != arn || stored.Revoked() {
				t.Errorf("stored token got stage %v revoked %v, want stage %v not revoked", stored.StageARN, stored.Revoked(), arn)
			}
		})
	}
}

func TestDisconnectParticipant(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	ctx := testContext(t)
	stage := createStage(t, c, "stage")
	other := createStage(t, c, "other")
	p := aws.ToString(createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stage)}).ParticipantId)
	q := aws.ToString(createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stage)}).ParticipantId)
	record(t, m, &ivsrt.Event{StageARN: ivsrt.StageARN(stage), Name: ivsrt.EventJoined, ParticipantID: ivsrt.ParticipantID(p)})

	revocation := func(id string) (bool, string) {
		t.Helper()
		tok, err := m.DB.GetParticipantToken(ctx, ivsrt.ParticipantID(id))
		if err != nil {
			t.Fatalf("stored token %s: %v", id, err)
		}
		return tok.Revoked(), tok.RevokeReason
	}

	tests := []struct {
		name        string
		stage, id   string
		reason      *string
		want        *wantError
		wantRevoked string // participant whose revocation to check
		wantReason  string
	}{
		{"with reason", stage, p, aws.String("Removed by the moderator: spam"), nil, p, "Removed by the moderator: spam"},
		{"again keeps the first reason", stage, p, aws.String("second"), nil, p, "Removed by the moderator: spam"},
		{"without reason", stage, q, nil, nil, q, ""},
		{"longest reason", stage, q, aws.String(strings.Repeat("r", ivsrt.MaxDisconnectReasonLength)), nil, q, ""},
		{"unknown participant", stage, missingParticipant, nil,
			&wantError{"ResourceNotFoundException", http.StatusNotFound, []string{"Participant " + missingParticipant + " not found in stage " + stage}}, "", ""},
		{"participant of another stage", other, p, nil,
			&wantError{"ResourceNotFoundException", http.StatusNotFound, []string{"Participant " + p + " not found in stage " + other}}, "", ""},
		{"unknown stage", missingStage, p, nil,
			&wantError{"ResourceNotFoundException", http.StatusNotFound, []string{"Participant " + p + " not found in stage " + missingStage}}, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := c.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{
				StageArn: aws.String(tt.stage), ParticipantId: aws.String(tt.id), Reason: tt.reason,
			})
			if tt.want != nil {
				checkError(t, err, *tt.want)
				return
			}
			if err != nil {
				t.Fatalf("DisconnectParticipant: %v", err)
			}
			revoked, reason := revocation(tt.wantRevoked)
			if !revoked || reason != tt.wantReason {
				t.Errorf("revocation got %v %q, want %v %q", revoked, reason, true, tt.wantReason)
			}
		})
	}
}

// sessionFixture is a stage with two sessions seeded through the store, as
// the media plane would record them:
//
//	session 1 (ended): alice joins over WHIP and publishes, bob subscribes
//	to her, carol fails to publish; all leave.
//	session 2 (active): bob joins again.
type sessionFixture struct {
	stage, other       string
	alice, bob, carol  string
	session1, session2 string
	at                 func(seconds int) time.Time
}

func newSessionFixture(t testing.TB, m *Main, c *ivsrealtime.Client) *sessionFixture {
	t.Helper()
	f := &sessionFixture{stage: createStage(t, c, "sessions"), other: createStage(t, c, "other")}
	t0 := time.Now().UTC().Truncate(time.Millisecond).Add(-time.Hour)
	f.at = func(s int) time.Time { return t0.Add(time.Duration(s) * time.Second) }
	tok := func(user string, attrs map[string]string, caps ...types.ParticipantTokenCapability) *types.ParticipantToken {
		return createToken(t, c, &ivsrealtime.CreateParticipantTokenInput{
			StageArn: aws.String(f.stage), UserId: aws.String(user), Attributes: attrs, Capabilities: caps,
		})
	}
	alice := tok("alice", map[string]string{"role": "host"})
	bob := tok("bob", nil, types.ParticipantTokenCapabilitySubscribe)
	carol := tok("carol", map[string]string{"seat": "3"}, types.ParticipantTokenCapabilitySubscribe)
	f.alice, f.bob, f.carol = *alice.ParticipantId, *bob.ParticipantId, *carol.ParticipantId

	stage := ivsrt.StageARN(f.stage)
	joined := func(s int, tok *types.ParticipantToken, protocol string) *ivsrt.Event {
		return &ivsrt.Event{StageARN: stage, Name: ivsrt.EventJoined, ParticipantID: ivsrt.ParticipantID(*tok.ParticipantId),
			UserID: *tok.UserId, Attributes: tok.Attributes, Protocol: protocol, Time: f.at(s)}
	}
	ev := func(s int, name ivsrt.EventName, id, remote, code string) *ivsrt.Event {
		return &ivsrt.Event{StageARN: stage, Name: name, ParticipantID: ivsrt.ParticipantID(id),
			RemoteParticipantID: ivsrt.ParticipantID(remote), ErrorCode: code, Time: f.at(s)}
	}
	first := joined(0, alice, "WHIP")
	record(t, m,
		first,
		ev(1, ivsrt.EventPublishStarted, f.alice, "", ""),
		joined(2, bob, ""),
		ev(3, ivsrt.EventSubscribeStarted, f.bob, f.alice, ""),
		joined(4, carol, ""),
		ev(5, ivsrt.EventPublishError, f.carol, "", ivsrt.ErrInsufficientCapabilities),
		ev(6, ivsrt.EventLeft, f.carol, "", ""),
		ev(7, ivsrt.EventSubscribeStopped, f.bob, f.alice, ""),
		ev(8, ivsrt.EventLeft, f.bob, "", ""),
		ev(9, ivsrt.EventPublishStopped, f.alice, "", ""),
		ev(10, ivsrt.EventLeft, f.alice, "", ""),
	)
	second := joined(20, bob, "")
	record(t, m, second)
	f.session1, f.session2 = string(first.SessionID), string(second.SessionID)
	if f.session1 == f.session2 {
		t.Fatalf("both sessions are %s, want two", f.session1)
	}
	return f
}

func TestSessions(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	ctx := testContext(t)
	f := newSessionFixture(t, m, c)
	at := func(s int) *time.Time { v := f.at(s); return &v }
	stage := aws.String(f.stage)

	t.Run("ListStageSessions", func(t *testing.T) {
		out, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: stage})
		if err != nil {
			t.Fatalf("ListStageSessions: %v", err)
		}
		checkJSON(t, "sessions, newest first", out.StageSessions, []types.StageSessionSummary{
			{SessionId: aws.String(f.session2), StartTime: at(20)},
			{SessionId: aws.String(f.session1), StartTime: at(0), EndTime: at(10)},
		})
		if out.NextToken != nil {
			t.Errorf("nextToken got %v, want none", *out.NextToken)
		}
	})

	t.Run("GetStageSession", func(t *testing.T) {
		for _, want := range []types.StageSession{
			{SessionId: aws.String(f.session1), StartTime: at(0), EndTime: at(10)},
			{SessionId: aws.String(f.session2), StartTime: at(20)},
		} {
			out, err := c.GetStageSession(ctx, &ivsrealtime.GetStageSessionInput{StageArn: stage, SessionId: want.SessionId})
			if err != nil {
				t.Fatalf("GetStageSession: %v", err)
			}
			checkJSON(t, "session", out.StageSession, want)
		}
	})

	t.Run("active session", func(t *testing.T) {
		got, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: stage})
		if err != nil {
			t.Fatalf("GetStage: %v", err)
		}
		if g := aws.ToString(got.Stage.ActiveSessionId); g != f.session2 {
			t.Errorf("GetStage activeSessionId got %v, want %v", g, f.session2)
		}
		list, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{})
		if err != nil {
			t.Fatalf("ListStages: %v", err)
		}
		checkJSON(t, "ListStages", list.Stages, []types.StageSummary{
			{Arn: stage, Name: aws.String("sessions"), ActiveSessionId: aws.String(f.session2), Tags: map[string]string{}},
			{Arn: aws.String(f.other), Name: aws.String("other"), Tags: map[string]string{}},
		})
	})

	t.Run("GetParticipant", func(t *testing.T) {
		tests := []struct {
			session, id string
			want        types.Participant
		}{
			{f.session1, f.alice, types.Participant{
				ParticipantId: aws.String(f.alice), UserId: aws.String("alice"), State: types.ParticipantStateDisconnected,
				FirstJoinTime: at(0), Attributes: map[string]string{"role": "host"}, Published: true,
				RecordingState: types.ParticipantRecordingStateDisabled, Protocol: types.ParticipantProtocolWhip,
				ReplicationType: types.ReplicationTypeNone, RecordingS3BucketName: aws.String(""), RecordingS3Prefix: aws.String(""),
			}},
			{f.session1, f.carol, types.Participant{
				ParticipantId: aws.String(f.carol), UserId: aws.String("carol"), State: types.ParticipantStateDisconnected,
				FirstJoinTime: at(4), Attributes: map[string]string{"seat": "3"},
				RecordingState: types.ParticipantRecordingStateDisabled, Protocol: types.ParticipantProtocolUnknown,
				ReplicationType: types.ReplicationTypeNone, RecordingS3BucketName: aws.String(""), RecordingS3Prefix: aws.String(""),
			}},
			{f.session2, f.bob, types.Participant{
				ParticipantId: aws.String(f.bob), UserId: aws.String("bob"), State: types.ParticipantStateConnected,
				FirstJoinTime: at(20), RecordingState: types.ParticipantRecordingStateDisabled,
				Protocol: types.ParticipantProtocolUnknown, ReplicationType: types.ReplicationTypeNone,
				RecordingS3BucketName: aws.String(""), RecordingS3Prefix: aws.String(""),
			}},
		}
		for _, tt := range tests {
			out, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{
				StageArn: stage, SessionId: aws.String(tt.session), ParticipantId: aws.String(tt.id),
			})
			if err != nil {
				t.Fatalf("GetParticipant: %v", err)
			}
			checkJSON(t, "participant", out.Participant, tt.want)
		}
	})

	summary := func(id, user string, state types.ParticipantState, joined int, published bool) types.ParticipantSummary {
		return types.ParticipantSummary{
			ParticipantId: aws.String(id), UserId: aws.String(user), State: state, FirstJoinTime: at(joined),
			Published: published, RecordingState: types.ParticipantRecordingStateDisabled, ReplicationType: types.ReplicationTypeNone,
		}
	}
	alice1 := summary(f.alice, "alice", types.ParticipantStateDisconnected, 0, true)
	bob1 := summary(f.bob, "bob", types.ParticipantStateDisconnected, 2, false)
	carol1 := summary(f.carol, "carol", types.ParticipantStateDisconnected, 4, false)
	bob2 := summary(f.bob, "bob", types.ParticipantStateConnected, 20, false)

	t.Run("ListParticipants", func(t *testing.T) {
		tests := []struct {
			name string
			in   ivsrealtime.ListParticipantsInput
			want []types.ParticipantSummary
		}{
			{"no filter", ivsrealtime.ListParticipantsInput{}, []types.ParticipantSummary{alice1, bob1, carol1}},
			{"other session", ivsrealtime.ListParticipantsInput{SessionId: aws.String(f.session2)}, []types.ParticipantSummary{bob2}},
			{"filterByUserId", ivsrealtime.ListParticipantsInput{FilterByUserId: aws.String("bob")}, []types.ParticipantSummary{bob1}},
			{"filterByUserId nobody", ivsrealtime.ListParticipantsInput{FilterByUserId: aws.String("dave")}, []types.ParticipantSummary{}},
			{"filterByPublished", ivsrealtime.ListParticipantsInput{FilterByPublished: true}, []types.ParticipantSummary{alice1}},
			{"filterByState DISCONNECTED", ivsrealtime.ListParticipantsInput{FilterByState: types.ParticipantStateDisconnected},
				[]types.ParticipantSummary{alice1, bob1, carol1}},
			{"filterByState CONNECTED", ivsrealtime.ListParticipantsInput{FilterByState: types.ParticipantStateConnected},
				[]types.ParticipantSummary{}},
			{"filterByState CONNECTED in active session", ivsrealtime.ListParticipantsInput{
				SessionId: aws.String(f.session2), FilterByState: types.ParticipantStateConnected}, []types.ParticipantSummary{bob2}},
			{"filterByRecordingState", ivsrealtime.ListParticipantsInput{
				FilterByRecordingState: types.ParticipantRecordingFilterByRecordingStateStopped}, []types.ParticipantSummary{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				in := tt.in
				in.StageArn = stage
				if in.SessionId == nil {
					in.SessionId = aws.String(f.session1)
				}
				out, err := c.ListParticipants(ctx, &in)
				if err != nil {
					t.Fatalf("ListParticipants: %v", err)
				}
				checkJSON(t, "participants", out.Participants, tt.want)
				if out.NextToken != nil {
					t.Errorf("nextToken got %v, want none", *out.NextToken)
				}
			})
		}
	})

	// The SDK leaves filterByPublished out when false; other clients send
	// it, and false must then filter.
	t.Run("ListParticipants filterByPublished on the wire", func(t *testing.T) {
		tests := []struct {
			name   string
			filter string
			want   []string
		}{
			{"false", `,"filterByPublished":false`, []string{f.bob, f.carol}},
			{"true", `,"filterByPublished":true`, []string{f.alice}},
			{"absent", ``, []string{f.alice, f.bob, f.carol}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				ex := signedRequest(t, m, "POST", "/ListParticipants",
					fmt.Sprintf(`{"stageArn":%q,"sessionId":%q%s}`, f.stage, f.session1, tt.filter))
				if ex.Status != http.StatusOK {
					t.Fatalf("status got %v, want %v (%s)", ex.Status, http.StatusOK, ex.Body)
				}
				var out struct {
					Participants []struct{ ParticipantID string }
				}
				ex.decode(t, &out)
				var got []string
				for _, p := range out.Participants {
					got = append(got, p.ParticipantID)
				}
				checkJSON(t, "participants", got, tt.want)
			})
		}
	})

	t.Run("ListParticipants more than one filter", func(t *testing.T) {
		const msg = "Only one of filterByUserId, filterByPublished, filterByState or filterByRecordingState can be provided per request"
		_, err := c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{
			StageArn: stage, SessionId: aws.String(f.session1),
			FilterByUserId: aws.String("bob"), FilterByState: types.ParticipantStateConnected,
		})
		checkError(t, err, validation(msg))
		_, err = c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{
			StageArn: stage, SessionId: aws.String(f.session1),
			FilterByPublished: true, FilterByRecordingState: types.ParticipantRecordingFilterByRecordingStateActive,
		})
		checkError(t, err, validation(msg))
		// false is a filter too when it is sent.
		ex := signedRequest(t, m, "POST", "/ListParticipants",
			fmt.Sprintf(`{"stageArn":%q,"sessionId":%q,"filterByPublished":false,"filterByUserId":"bob"}`, f.stage, f.session1))
		checkRawError(t, ex, validation(msg))
	})

	t.Run("ListParticipantEvents", func(t *testing.T) {
		event := func(id string, name types.EventName, s int, remote string, code types.EventErrorCode) types.Event {
			e := types.Event{ParticipantId: aws.String(id), Name: name, EventTime: at(s), ErrorCode: code}
			if remote != "" {
				e.RemoteParticipantId = aws.String(remote)
			}
			return e
		}
		tests := []struct {
			name        string
			session, id string
			want        []types.Event
		}{
			{"publisher", f.session1, f.alice, []types.Event{
				event(f.alice, types.EventNameJoined, 0, "", ""),
				event(f.alice, types.EventNamePublishStarted, 1, "", ""),
				event(f.alice, types.EventNamePublishStopped, 9, "", ""),
				event(f.alice, types.EventNameLeft, 10, "", ""),
			}},
			{"subscriber", f.session1, f.bob, []types.Event{
				event(f.bob, types.EventNameJoined, 2, "", ""),
				event(f.bob, types.EventNameSubscribeStarted, 3, f.alice, ""),
				event(f.bob, types.EventNameSubscribeStopped, 7, f.alice, ""),
				event(f.bob, types.EventNameLeft, 8, "", ""),
			}},
			{"error", f.session1, f.carol, []types.Event{
				event(f.carol, types.EventNameJoined, 4, "", ""),
				event(f.carol, types.EventNamePublishError, 5, "", types.EventErrorCodeInsufficientCapabilities),
				event(f.carol, types.EventNameLeft, 6, "", ""),
			}},
			{"active session", f.session2, f.bob, []types.Event{event(f.bob, types.EventNameJoined, 20, "", "")}},
			{"not in session", f.session2, f.alice, []types.Event{}},
		}
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				out, err := c.ListParticipantEvents(ctx, &ivsrealtime.ListParticipantEventsInput{
					StageArn: stage, SessionId: aws.String(tt.session), ParticipantId: aws.String(tt.id),
				})
				if err != nil {
					t.Fatalf("ListParticipantEvents: %v", err)
				}
				checkJSON(t, "events", out.Events, tt.want)
				if out.NextToken != nil {
					t.Errorf("nextToken got %v, want none", *out.NextToken)
				}
			})
		}
	})

	t.Run("session ends when the last one leaves", func(t *testing.T) {
		record(t, m, &ivsrt.Event{StageARN: ivsrt.StageARN(f.stage), Name: ivsrt.EventLeft, ParticipantID: ivsrt.ParticipantID(f.bob), Time: f.at(30)})
		got, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: stage})
		if err != nil {
			t.Fatalf("GetStage: %v", err)
		}
		if got.Stage.ActiveSessionId != nil {
			t.Errorf("activeSessionId got %v, want none", *got.Stage.ActiveSessionId)
		}
		out, err := c.GetStageSession(ctx, &ivsrealtime.GetStageSessionInput{StageArn: stage, SessionId: aws.String(f.session2)})
		if err != nil {
			t.Fatalf("GetStageSession: %v", err)
		}
		checkJSON(t, "session", out.StageSession, types.StageSession{SessionId: aws.String(f.session2), StartTime: at(20), EndTime: at(30)})
	})
}

func TestTags(t *testing.T) {
	t.Parallel()
	_, c := startServer(t)
	ctx := testContext(t)
	arn := aws.String(createStage(t, c, "tagged"))
	other := aws.String(createStage(t, c, "other"))
	if _, err := c.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: other, Tags: map[string]string{"other": "x"}}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}

	many := map[string]string{}
	for i := range ivsrt.MaxTagsPerResource {
		many[fmt.Sprintf("key-%02d", i)] = strconv.Itoa(i)
	}
	steps := []struct {
		name  string
		tag   map[string]string
		untag []string
		want  map[string]string
	}{
		{"first tags", map[string]string{"env": "test", "team": "video"}, nil, map[string]string{"env": "test", "team": "video"}},
		{"merge and overwrite", map[string]string{"env": "prod", "cost center": "42/a:b=c+d@e.f_g-h"}, nil,
			map[string]string{"env": "prod", "team": "video", "cost center": "42/a:b=c+d@e.f_g-h"}},
		{"empty value", map[string]string{"flag": ""}, nil,
			map[string]string{"env": "prod", "team": "video", "cost center": "42/a:b=c+d@e.f_g-h", "flag": ""}},
		{"untag two and an absent key", nil, []string{"env", "cost center", "absent"}, map[string]string{"team": "video", "flag": ""}},
		{"untag all", nil, []string{"team", "flag"}, map[string]string{}},
		{"fifty", many, nil, many},
		{"overwrite at fifty", map[string]string{"key-00": "changed"}, nil, func() map[string]string {
			m := map[string]string{}
			for k, v := range many {
				m[k] = v
			}
			m["key-00"] = "changed"
			return m
		}()},
	}
	for _, tt := range steps {
		t.Run(tt.name, func(t *testing.T) {
			if tt.tag != nil {
				if _, err := c.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: arn, Tags: tt.tag}); err != nil {
					t.Fatalf("TagResource: %v", err)
				}
			}
			if tt.untag != nil {
				if _, err := c.UntagResource(ctx, &ivsrealtime.UntagResourceInput{ResourceArn: arn, TagKeys: tt.untag}); err != nil {
					t.Fatalf("UntagResource: %v", err)
				}
			}
			out, err := c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: arn})
			if err != nil {
				t.Fatalf("ListTagsForResource: %v", err)
			}
			if out.Tags == nil {
				t.Errorf("tags got nil, want a map")
			}
			checkJSON(t, "ListTagsForResource", out.Tags, tt.want)
			st, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: arn})
			if err != nil {
				t.Fatalf("GetStage: %v", err)
			}
			checkJSON(t, "GetStage tags", st.Stage.Tags, tt.want)
		})
	}
	out, err := c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: other})
	if err != nil {
		t.Fatalf("ListTagsForResource: %v", err)
	}
	checkJSON(t, "tags of the other stage", out.Tags, map[string]string{"other": "x"})
}

// validationCase is a call that the server must refuse with a
// ValidationException naming the field and the rule.
type validationCase struct {
	name string
	call func() error
	want []string
}

func TestValidation(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	withTestStorage(t, m)
	ctx := testContext(t)
	created, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{
		Name:                           aws.String("kept"),
		Tags:                           map[string]string{"env": "test"},
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{{UserId: aws.String("alice")}},
	})
	if err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	stage := created.Stage.Arn
	participant := created.ParticipantTokens[0].ParticipantId
	record(t, m, &ivsrt.Event{StageARN: ivsrt.StageARN(*stage), Name: ivsrt.EventJoined, ParticipantID: ivsrt.ParticipantID(*participant), UserID: "alice"})
	got, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: stage})
	if err != nil {
		t.Fatalf("GetStage: %v", err)
	}
	session := got.Stage.ActiveSessionId

	long := func(n int) string { return strings.Repeat("a", n) }
	tags := func(n int) map[string]string {
		m := map[string]string{}
		for i := range n {
			m[fmt.Sprintf("k%03d", i)] = "v"
		}
		return m
	}
	keys := func(n int) []string {
		var ks []string
		for i := range n {
			ks = append(ks, fmt.Sprintf("k%03d", i))
		}
		return ks
	}
	configs := func(n int) []types.ParticipantTokenConfiguration {
		return make([]types.ParticipantTokenConfiguration, n)
	}
	// 1025 bytes in 343 characters: the limit counts bytes.
	tooBigAttrs := map[string]string{"ü": strings.Repeat("€", 341)}
	tooBigAttrs2 := map[string]string{"a": long(500), "b": long(523)}
	createStageCall := func(in ivsrealtime.CreateStageInput) func() error {
		return func() error { _, err := c.CreateStage(ctx, &in); return err }
	}
	withConfig := func(cfg types.ParticipantTokenConfiguration) func() error {
		return createStageCall(ivsrealtime.CreateStageInput{ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{{}, cfg}})
	}
	withRecording := func(r types.AutoParticipantRecordingConfiguration) func() error {
		if r.StorageConfigurationArn == nil {
			r.StorageConfigurationArn = aws.String(storageARN)
		}
		return createStageCall(ivsrealtime.CreateStageInput{AutoParticipantRecordingConfiguration: &r})
	}
	updateStage := func(in ivsrealtime.UpdateStageInput) func() error {
		if in.Arn == nil {
			in.Arn = stage
		}
		return func() error { _, err := c.UpdateStage(ctx, &in); return err }
	}
	createTokenCall := func(in ivsrealtime.CreateParticipantTokenInput) func() error {
		if in.StageArn == nil {
			in.StageArn = stage
		}
		return func() error { _, err := c.CreateParticipantToken(ctx, &in); return err }
	}
	disconnect := func(in ivsrealtime.DisconnectParticipantInput) func() error {
		if in.StageArn == nil {
			in.StageArn = stage
		}
		if in.ParticipantId == nil {
			in.ParticipantId = participant
		}
		return func() error { _, err := c.DisconnectParticipant(ctx, &in); return err }
	}
	getSession := func(arn, id string) func() error {
		return func() error {
			_, err := c.GetStageSession(ctx, &ivsrealtime.GetStageSessionInput{StageArn: aws.String(arn), SessionId: aws.String(id)})
			return err
		}
	}
	getParticipant := func(arn, sess, id string) func() error {
		return func() error {
			_, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: aws.String(arn), SessionId: aws.String(sess), ParticipantId: aws.String(id)})
			return err
		}
	}
	listParticipants := func(in ivsrealtime.ListParticipantsInput) func() error {
		in.StageArn, in.SessionId = stage, session
		return func() error { _, err := c.ListParticipants(ctx, &in); return err }
	}
	// Each list operation, with the same page parameters.
	lists := map[string]func(maxResults *int32, nextToken *string) error{
		"ListStages": func(n *int32, tok *string) error {
			_, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: n, NextToken: tok})
			return err
		},
		"ListStageSessions": func(n *int32, tok *string) error {
			_, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: stage, MaxResults: n, NextToken: tok})
			return err
		},
		"ListParticipants": func(n *int32, tok *string) error {
			_, err := c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: stage, SessionId: session, MaxResults: n, NextToken: tok})
			return err
		},
		"ListParticipantEvents": func(n *int32, tok *string) error {
			_, err := c.ListParticipantEvents(ctx, &ivsrealtime.ListParticipantEventsInput{
				StageArn: stage, SessionId: session, ParticipantId: participant, MaxResults: n, NextToken: tok})
			return err
		},
	}
	tagResource := func(arn string, tags map[string]string) func() error {
		return func() error {
			_, err := c.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: aws.String(arn), Tags: tags})
			return err
		}
	}
	untagResource := func(arn string, keys ...string) func() error {
		if keys == nil {
			keys = []string{} // sent as no tagKeys at all
		}
		return func() error {
			_, err := c.UntagResource(ctx, &ivsrealtime.UntagResourceInput{ResourceArn: aws.String(arn), TagKeys: keys})
			return err
		}
	}

	const (
		arnRule      = "Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+"
		wrongService = "arn:aws:ivschat:us-east-1:123456789012:stage/abcdABCD1234"
		wrongType    = "arn:aws:ivs:us-east-1:123456789012:channel/abcdABCD1234"
		missingID    = "arn:aws:ivs:us-east-1:123456789012:stage/"
		le128        = "Member must have length less than or equal to 128"
	)
	tooLongARN := "arn:aws:ivs:us-east-1:123456789012:stage/" + long(129-len("arn:aws:ivs:us-east-1:123456789012:stage/"))
	badARNs := []struct{ name, arn, rule string }{
		{"wrong service", wrongService, arnRule},
		{"wrong resource type", wrongType, arnRule},
		{"missing id", missingID, arnRule},
		{"too long", tooLongARN, le128},
		{"empty", "", "Member must have length greater than or equal to 1"},
	}

	tests := []validationCase{
		// Stage names.
		{"name too long", createStageCall(ivsrealtime.CreateStageInput{Name: aws.String(long(129))}), []string{"at 'name'", le128}},
		{"name pattern", createStageCall(ivsrealtime.CreateStageInput{Name: aws.String("bad name!")}),
			[]string{"Value 'bad name!' at 'name'", "Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*"}},
		{"update name too long", updateStage(ivsrealtime.UpdateStageInput{Name: aws.String(long(129))}), []string{"at 'name'", le128}},
		{"update name pattern", updateStage(ivsrealtime.UpdateStageInput{Name: aws.String("dots.are.bad")}),
			[]string{"at 'name'", "regular expression pattern: [a-zA-Z0-9-_]*"}},

		// Tags.
		{"51 tags", createStageCall(ivsrealtime.CreateStageInput{Tags: tags(51)}), []string{"at 'tags'", "Member must have length less than or equal to 50"}},
		{"tag key 129", createStageCall(ivsrealtime.CreateStageInput{Tags: map[string]string{long(129): "v"}}), []string{"at 'tags.key'", le128}},
		{"tag value 257", createStageCall(ivsrealtime.CreateStageInput{Tags: map[string]string{"k": long(257)}}),
			[]string{"at 'tags.value'", "Member must have length less than or equal to 256"}},
		{"tag key aws:", createStageCall(ivsrealtime.CreateStageInput{Tags: map[string]string{"aws:owner": "me"}}),
			[]string{"Value 'aws:owner' at 'tags.key'", "Member must not start with the reserved prefix 'aws:'"}},
		{"tag key AWS:", createStageCall(ivsrealtime.CreateStageInput{Tags: map[string]string{"AWS:Owner": "me"}}),
			[]string{"at 'tags.key'", "reserved prefix 'aws:'"}},
		{"tag key empty", createStageCall(ivsrealtime.CreateStageInput{Tags: map[string]string{"": "v"}}),
			[]string{"Value '' at 'tags.key'", "Member must have length greater than or equal to 1"}},
		{"TagResource 51 tags", tagResource(*stage, tags(51)), []string{"at 'tags'", "less than or equal to 50"}},
		{"TagResource aws:", tagResource(*stage, map[string]string{"aws:cloudformation:stack": "x"}), []string{"at 'tags.key'", "reserved prefix 'aws:'"}},
		{"TagResource key 129", tagResource(*stage, map[string]string{long(129): "x"}), []string{"at 'tags.key'", le128}},
		{"TagResource value 257", tagResource(*stage, map[string]string{"k": long(257)}), []string{"at 'tags.value'", "less than or equal to 256"}},
		{"TagResource empty key", tagResource(*stage, map[string]string{"": "x"}), []string{"at 'tags.key'", "greater than or equal to 1"}},
		{"TagResource over 50 in all", tagResource(*stage, tags(50)), []string{"at most 50 tags", "51"}},
		{"UntagResource aws:", untagResource(*stage, "env", "aws:owner"), []string{"at 'tagKeys.member'", "reserved prefix 'aws:'"}},
		{"UntagResource 51 keys", untagResource(*stage, keys(51)...), []string{"at 'tagKeys'", "less than or equal to 50"}},
		{"UntagResource key 129", untagResource(*stage, long(129)), []string{"at 'tagKeys.member'", le128}},
		{"UntagResource no keys", untagResource(*stage), []string{"Value null at 'tagKeys'", "Member must not be null"}},

		// Participant token configurations of CreateStage.
		{"13 token configurations", createStageCall(ivsrealtime.CreateStageInput{ParticipantTokenConfigurations: configs(13)}),
			[]string{"at 'participantTokenConfigurations'", "Member must have length less than or equal to 12"}},
		{"configuration duration 0", withConfig(types.ParticipantTokenConfiguration{Duration: aws.Int32(0)}),
			[]string{"Value '0' at 'participantTokenConfigurations.2.member.duration'", "Member must have value greater than or equal to 1"}},
		{"configuration duration 20161", withConfig(types.ParticipantTokenConfiguration{Duration: aws.Int32(20161)}),
			[]string{"Value '20161' at 'participantTokenConfigurations.2.member.duration'", "Member must have value less than or equal to 20160"}},
		{"configuration userId 129", withConfig(types.ParticipantTokenConfiguration{UserId: aws.String(long(129))}),
			[]string{"at 'participantTokenConfigurations.2.member.userId'", le128}},
		{"configuration attributes 1025 bytes", withConfig(types.ParticipantTokenConfiguration{Attributes: tooBigAttrs}),
			[]string{"at 'participantTokenConfigurations.2.member.attributes'", "less than or equal to 1024 bytes, got 1025"}},
		{"configuration capability", withConfig(types.ParticipantTokenConfiguration{Capabilities: []types.ParticipantTokenCapability{"ADMIN"}}),
			[]string{"Value 'ADMIN' at 'participantTokenConfigurations.2.member.capabilities.member'", "Member must satisfy enum value set: [PUBLISH, SUBSCRIBE]"}},
		{"configuration 3 capabilities", withConfig(types.ParticipantTokenConfiguration{Capabilities: []types.ParticipantTokenCapability{"PUBLISH", "SUBSCRIBE", "PUBLISH"}}),
			[]string{"at 'participantTokenConfigurations.2.member.capabilities'", "less than or equal to 2"}},
		{"two errors at once", createStageCall(ivsrealtime.CreateStageInput{Name: aws.String("a b"), Tags: map[string]string{"aws:x": "y"}}),
			[]string{"2 validation errors detected", "at 'name'", "at 'tags.key'"}},

		// Recording configurations.
		{"recording storage ARN", withRecording(types.AutoParticipantRecordingConfiguration{StorageConfigurationArn: aws.String("arn:aws:s3:::bucket")}),
			[]string{"at 'autoParticipantRecordingConfiguration.storageConfigurationArn'", "regular expression pattern"}},
		{"recording media type", withRecording(types.AutoParticipantRecordingConfiguration{MediaTypes: []types.ParticipantRecordingMediaType{"VIDEO_ONLY"}}),
			[]string{"at 'autoParticipantRecordingConfiguration.mediaTypes.member'", "enum value set: [AUDIO_VIDEO, AUDIO_ONLY, NONE]"}},
		{"recording reconnect window 301", withRecording(types.AutoParticipantRecordingConfiguration{RecordingReconnectWindowSeconds: 301}),
			[]string{"at 'autoParticipantRecordingConfiguration.recordingReconnectWindowSeconds'", "less than or equal to 300"}},
		{"recording HLS segment 11", withRecording(types.AutoParticipantRecordingConfiguration{
			HlsConfiguration: &types.ParticipantRecordingHlsConfiguration{TargetSegmentDurationSeconds: aws.Int32(11)}}),
			[]string{"at 'autoParticipantRecordingConfiguration.hlsConfiguration.targetSegmentDurationSeconds'", "less than or equal to 10"}},
		{"recording thumbnail interval 0", withRecording(types.AutoParticipantRecordingConfiguration{
			ThumbnailConfiguration: &types.ParticipantThumbnailConfiguration{TargetIntervalSeconds: aws.Int32(0)}}),
			[]string{"at 'autoParticipantRecordingConfiguration.thumbnailConfiguration.targetIntervalSeconds'", "greater than or equal to 1"}},
		{"recording thumbnail mode", withRecording(types.AutoParticipantRecordingConfiguration{
			ThumbnailConfiguration: &types.ParticipantThumbnailConfiguration{RecordingMode: "SOMETIMES"}}),
			[]string{"at 'autoParticipantRecordingConfiguration.thumbnailConfiguration.recordingMode'", "enum value set: [INTERVAL, DISABLED]"}},
		{"update recording", updateStage(ivsrealtime.UpdateStageInput{AutoParticipantRecordingConfiguration: &types.AutoParticipantRecordingConfiguration{
			StorageConfigurationArn: aws.String(storageARN), RecordingReconnectWindowSeconds: -1}}),
			[]string{"at 'autoParticipantRecordingConfiguration.recordingReconnectWindowSeconds'", "greater than or equal to 0"}},

		// CreateParticipantToken.
		{"token duration 0", createTokenCall(ivsrealtime.CreateParticipantTokenInput{Duration: aws.Int32(0)}),
			[]string{"Value '0' at 'duration'", "Member must have value greater than or equal to 1"}},
		{"token duration 20161", createTokenCall(ivsrealtime.CreateParticipantTokenInput{Duration: aws.Int32(20161)}),
			[]string{"Value '20161' at 'duration'", "Member must have value less than or equal to 20160"}},
		{"token userId 129", createTokenCall(ivsrealtime.CreateParticipantTokenInput{UserId: aws.String(long(129))}), []string{"at 'userId'", le128}},
		{"token userId 129 characters", createTokenCall(ivsrealtime.CreateParticipantTokenInput{UserId: aws.String(strings.Repeat("é", 129))}),
			[]string{"at 'userId'", le128}},
		{"token attributes 1025 bytes", createTokenCall(ivsrealtime.CreateParticipantTokenInput{Attributes: tooBigAttrs}),
			[]string{"at 'attributes'", "total size of keys and values less than or equal to 1024 bytes, got 1025"}},
		{"token attributes 1025 bytes in two", createTokenCall(ivsrealtime.CreateParticipantTokenInput{Attributes: tooBigAttrs2}),
			[]string{"at 'attributes'", "got 1025"}},
		{"token capability", createTokenCall(ivsrealtime.CreateParticipantTokenInput{Capabilities: []types.ParticipantTokenCapability{"publish"}}),
			[]string{"Value 'publish' at 'capabilities.member'", "enum value set: [PUBLISH, SUBSCRIBE]"}},

		// DisconnectParticipant.
		{"reason 129", disconnect(ivsrealtime.DisconnectParticipantInput{Reason: aws.String(long(129))}), []string{"at 'reason'", le128}},
		{"disconnect participantId pattern", disconnect(ivsrealtime.DisconnectParticipantInput{ParticipantId: aws.String("bad id!")}),
			[]string{"Value 'bad id!' at 'participantId'", "regular expression pattern: [a-zA-Z0-9-_]*"}},
		{"disconnect participantId 65", disconnect(ivsrealtime.DisconnectParticipantInput{ParticipantId: aws.String(long(65))}),
			[]string{"at 'participantId'", "less than or equal to 64"}},

		// Session and participant ids.
		{"sessionId short", getSession(*stage, "st-short"), []string{"Value 'st-short' at 'sessionId'", "Member must have length greater than or equal to 16"}},
		{"sessionId long", getSession(*stage, "st-abcdefghijklmn"), []string{"at 'sessionId'", "Member must have length less than or equal to 16"}},
		{"sessionId prefix", getSession(*stage, "ss-abcdefghijklm"), []string{"at 'sessionId'", "regular expression pattern: st-[a-zA-Z0-9]+"}},
		{"sessionId characters", getSession(*stage, "st-abcdefghijk_m"), []string{"at 'sessionId'", "regular expression pattern: st-[a-zA-Z0-9]+"}},
		{"participant sessionId", getParticipant(*stage, "st-short", *participant), []string{"at 'sessionId'", "greater than or equal to 16"}},
		{"participantId pattern", getParticipant(*stage, *session, "has_underscore"),
			[]string{"Value 'has_underscore' at 'participantId'", "regular expression pattern: [a-zA-Z0-9-]*"}},
		{"participantId 65", getParticipant(*stage, *session, long(65)), []string{"at 'participantId'", "less than or equal to 64"}},
		{"events participantId pattern", func() error {
			_, err := c.ListParticipantEvents(ctx, &ivsrealtime.ListParticipantEventsInput{StageArn: stage, SessionId: session, ParticipantId: aws.String("a.b")})
			return err
		}, []string{"at 'participantId'", "regular expression pattern: [a-zA-Z0-9-]*"}},
		{"events sessionId", func() error {
			_, err := c.ListParticipantEvents(ctx, &ivsrealtime.ListParticipantEventsInput{StageArn: stage, SessionId: aws.String("st-"), ParticipantId: participant})
			return err
		}, []string{"at 'sessionId'", "greater than or equal to 16"}},
		{"list sessions stageArn", func() error {
			_, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(wrongType)})
			return err
		}, []string{"at 'stageArn'", arnRule}},

		// ListParticipants filters.
		{"filterByUserId 129", listParticipants(ivsrealtime.ListParticipantsInput{FilterByUserId: aws.String(long(129))}),
			[]string{"at 'filterByUserId'", le128}},
		{"filterByState", listParticipants(ivsrealtime.ListParticipantsInput{FilterByState: "GONE"}),
			[]string{"Value 'GONE' at 'filterByState'", "enum value set: [CONNECTED, DISCONNECTED]"}},
		{"filterByRecordingState", listParticipants(ivsrealtime.ListParticipantsInput{FilterByRecordingState: "DISABLED"}),
			[]string{"Value 'DISABLED' at 'filterByRecordingState'", "enum value set: [STARTING, ACTIVE, STOPPING, STOPPED, FAILED]"}},
		{"two filters", listParticipants(ivsrealtime.ListParticipantsInput{FilterByUserId: aws.String("alice"), FilterByPublished: true}),
			[]string{"Only one of filterByUserId, filterByPublished, filterByState or filterByRecordingState"}},
	}
	for _, b := range badARNs {
		arn := b.arn
		tests = append(tests,
			validationCase{"GetStage arn " + b.name, func() error { _, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: &arn}); return err },
				[]string{"at 'arn'", b.rule}},
			validationCase{"UpdateStage arn " + b.name, updateStage(ivsrealtime.UpdateStageInput{Arn: &arn, Name: aws.String("x")}),
				[]string{"at 'arn'", b.rule}},
			validationCase{"DeleteStage arn " + b.name, func() error { _, err := c.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: &arn}); return err },
				[]string{"at 'arn'", b.rule}},
			validationCase{"CreateParticipantToken stageArn " + b.name, createTokenCall(ivsrealtime.CreateParticipantTokenInput{StageArn: &arn}),
				[]string{"at 'stageArn'", b.rule}},
			validationCase{"DisconnectParticipant stageArn " + b.name, disconnect(ivsrealtime.DisconnectParticipantInput{StageArn: &arn}),
				[]string{"at 'stageArn'", b.rule}},
			validationCase{"GetStageSession stageArn " + b.name, getSession(arn, *session), []string{"at 'stageArn'", b.rule}},
			validationCase{"GetParticipant stageArn " + b.name, getParticipant(arn, *session, *participant), []string{"at 'stageArn'", b.rule}},
		)
		if arn == "" {
			continue // the SDK does not send an empty path label
		}
		tests = append(tests,
			validationCase{"TagResource resourceArn " + b.name, tagResource(arn, map[string]string{"k": "v"}), []string{"at 'resourceArn'", b.rule}},
			validationCase{"UntagResource resourceArn " + b.name, untagResource(arn, "env"), []string{"at 'resourceArn'", b.rule}},
			validationCase{"ListTagsForResource resourceArn " + b.name, func() error {
				_, err := c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: &arn})
				return err
			}, []string{"at 'resourceArn'", b.rule}},
		)
	}
	for _, name := range slices.Sorted(maps.Keys(lists)) {
		list := lists[name]
		tests = append(tests,
			validationCase{name + " maxResults 0", func() error { return list(aws.Int32(0), nil) },
				[]string{"Value '0' at 'maxResults'", "Member must have value greater than or equal to 1"}},
			validationCase{name + " maxResults 101", func() error { return list(aws.Int32(101), nil) },
				[]string{"Value '101' at 'maxResults'", "Member must have value less than or equal to 100"}},
			validationCase{name + " nextToken pattern", func() error { return list(nil, aws.String("not a token!")) },
				[]string{"Value 'not a token!' at 'nextToken'", "regular expression pattern: [a-zA-Z0-9+/=_-]*"}},
			validationCase{name + " nextToken 1025", func() error { return list(nil, aws.String(long(1025))) },
				[]string{"at 'nextToken'", "Member must have length less than or equal to 1024"}},
			validationCase{name + " nextToken forged", func() error { return list(nil, aws.String("AQEyMzQ1Njc4OTAxMjM0NTY3ODkw")) },
				[]string{"The nextToken is not valid"}},
		)
	}

	before := state(t, m, c)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkError(t, tt.call(), validation(tt.want...))
			if after := state(t, m, c); after != before {
				t.Errorf("state after a refused call got %v, want %v", after, before)
			}
		})
	}
}

// TestValidationWire sends what the SDK would refuse to send or cannot
// express: missing required fields, wrong JSON types, broken JSON,
// oversized bodies.
func TestValidationWire(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	ctx := testContext(t)
	created, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{
		Name:                           aws.String("kept"),
		Tags:                           map[string]string{"env": "test"},
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{{}},
	})
	if err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	stage := *created.Stage.Arn
	participant := *created.ParticipantTokens[0].ParticipantId
	record(t, m, &ivsrt.Event{StageARN: ivsrt.StageARN(stage), Name: ivsrt.EventJoined, ParticipantID: ivsrt.ParticipantID(participant)})
	got, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(stage)})
	if err != nil {
		t.Fatalf("GetStage: %v", err)
	}
	session := *got.Stage.ActiveSessionId

	null := func(field string) []string {
		return []string{"Value null at '" + field + "' failed to satisfy constraint: Member must not be null"}
	}
	ofType := func(field, typ string) []string {
		return []string{"at '" + field + "'", "Member must be of type " + typ}
	}
	const invalidJSON = "The request body is not valid JSON for this operation."
	s := func(format string, args ...any) string { return fmt.Sprintf(format, args...) }
	tests := []struct {
		name, method, path, body string
		want                     []string
	}{
		// Missing required fields.
		{"GetStage no body", "POST", "/GetStage", "", null("arn")},
		{"GetStage no arn", "POST", "/GetStage", `{}`, null("arn")},
		{"GetStage null arn", "POST", "/GetStage", `{"arn":null}`, null("arn")},
		{"UpdateStage no arn", "POST", "/UpdateStage", `{"name":"x"}`, null("arn")},
		{"DeleteStage no arn", "POST", "/DeleteStage", `{}`, null("arn")},
		{"CreateParticipantToken no stageArn", "POST", "/CreateParticipantToken", `{"userId":"x"}`, null("stageArn")},
		{"DisconnectParticipant no participantId", "POST", "/DisconnectParticipant", s(`{"stageArn":%q}`, stage), null("participantId")},
		{"DisconnectParticipant no stageArn", "POST", "/DisconnectParticipant", s(`{"participantId":%q}`, participant), null("stageArn")},
		{"GetStageSession no sessionId", "POST", "/GetStageSession", s(`{"stageArn":%q}`, stage), null("sessionId")},
		{"ListStageSessions no stageArn", "POST", "/ListStageSessions", `{}`, null("stageArn")},
		{"GetParticipant no participantId", "POST", "/GetParticipant", s(`{"stageArn":%q,"sessionId":%q}`, stage, session), null("participantId")},
		{"ListParticipants no sessionId", "POST", "/ListParticipants", s(`{"stageArn":%q}`, stage), null("sessionId")},
		{"ListParticipantEvents no participantId", "POST", "/ListParticipantEvents", s(`{"stageArn":%q,"sessionId":%q}`, stage, session), null("participantId")},
		{"TagResource no tags", "POST", tagsPath(stage), `{}`, null("tags")},
		{"UntagResource no tagKeys", "DELETE", tagsPath(stage), ``, null("tagKeys")},
		{"recording without storage ARN", "POST", "/CreateStage", `{"autoParticipantRecordingConfiguration":{"mediaTypes":["AUDIO_ONLY"]}}`,
			null("autoParticipantRecordingConfiguration.storageConfigurationArn")},
		{"tags path without ARN", "GET", "/tags/", ``, []string{"at 'resourceArn'", "greater than or equal to 1"}},

		// Wrong JSON types.
		{"name number", "POST", "/CreateStage", `{"name":5}`, ofType("name", "string")},
		{"name object", "POST", "/CreateStage", `{"name":{"a":"b"}}`, ofType("name", "string")},
		{"tags list", "POST", "/CreateStage", `{"tags":["a"]}`, ofType("tags", "map")},
		{"tag value number", "POST", "/CreateStage", `{"tags":{"a":1}}`, []string{"tags", "Member must be of type string"}},
		{"configurations object", "POST", "/CreateStage", `{"participantTokenConfigurations":{"a":1}}`, ofType("participantTokenConfigurations", "list")},
		{"duration string", "POST", "/CreateStage", `{"participantTokenConfigurations":[{"duration":"60"}]}`,
			[]string{"duration", "Member must be of type integer"}},
		{"duration fraction", "POST", "/CreateParticipantToken", s(`{"stageArn":%q,"duration":1.5}`, stage), ofType("duration", "integer")},
		{"arn number", "POST", "/GetStage", `{"arn":42}`, ofType("arn", "string")},
		{"maxResults string", "POST", "/ListStages", `{"maxResults":"5"}`, ofType("maxResults", "integer")},
		{"maxResults string beside stageArn", "POST", "/ListStageSessions", s(`{"stageArn":%q,"maxResults":"5"}`, stage), ofType("maxResults", "integer")},
		{"stageArn number in events", "POST", "/ListParticipantEvents", `{"stageArn":5}`, ofType("stageArn", "string")},
		{"participantId list", "POST", "/GetParticipant", `{"participantId":["a"]}`, ofType("participantId", "string")},
		{"filterByPublished string", "POST", "/ListParticipants", s(`{"stageArn":%q,"sessionId":%q,"filterByPublished":"false"}`, stage, session),
			ofType("filterByPublished", "boolean")},
		{"capabilities string", "POST", "/CreateParticipantToken", s(`{"stageArn":%q,"capabilities":"PUBLISH"}`, stage), ofType("capabilities", "list")},
		{"TagResource tags string", "POST", tagsPath(stage), `{"tags":"a=b"}`, ofType("tags", "map")},

		// Broken JSON.
		{"truncated", "POST", "/CreateStage", `{"name":"x"`, []string{invalidJSON}},
		{"not JSON", "POST", "/CreateStage", `name=x`, []string{invalidJSON}},
		{"array", "POST", "/CreateStage", `[{"name":"x"}]`, []string{invalidJSON}},
		{"trailing data", "POST", "/CreateStage", `{"name":"x"} {"name":"y"}`, []string{invalidJSON}},
		{"string", "POST", "/UpdateStage", s(`%q`, stage), []string{invalidJSON}},
		{"TagResource broken", "POST", tagsPath(stage), `{"tags":{"a":"b"}`, []string{invalidJSON}},
	}
	before := state(t, m, c)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := signedRequest(t, m, tt.method, tt.path, tt.body)
			checkRawError(t, ex, validation(tt.want...))
			if after := state(t, m, c); after != before {
				t.Errorf("state after a refused call got %v, want %v", after, before)
			}
		})
	}

	// The largest body read is 256 KiB: one byte more is refused before
	// anything is stored, whatever the body says.
	const limit = 256 << 10
	padded := func(size int) string {
		head, tail := `{"name":"padded","tags":{"pad":"`, `"}}`
		return head + strings.Repeat(" ", size-len(head)-len(tail)) + tail
	}
	t.Run("body over 256 KiB", func(t *testing.T) {
		ex := signedRequest(t, m, "POST", "/CreateStage", padded(limit+1))
		checkRawError(t, ex, wantError{"ValidationException", http.StatusRequestEntityTooLarge,
			[]string{"The request body exceeds the limit of 262144 bytes."}})
		if after := state(t, m, c); after != before {
			t.Errorf("state after a refused call got %v, want %v", after, before)
		}
	})
	t.Run("body over 256 KiB through the SDK", func(t *testing.T) {
		_, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{
			Name:                           aws.String("huge"),
			ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{{Attributes: map[string]string{"a": strings.Repeat("x", 300<<10)}}},
		})
		checkError(t, err, wantError{"ValidationException", http.StatusRequestEntityTooLarge, []string{"exceeds the limit of 262144 bytes"}})
		if after := state(t, m, c); after != before {
			t.Errorf("state after a refused call got %v, want %v", after, before)
		}
	})
	t.Run("body of exactly 256 KiB", func(t *testing.T) {
		// The padding is in a tag value that is too long, so the body is
		// read whole and then refused by validation, not by size.
		ex := signedRequest(t, m, "POST", "/CreateStage", padded(limit))
		checkRawError(t, ex, validation("at 'tags.value'"))
	})
}

func TestResourceNotFound(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	ctx := testContext(t)
	f := newSessionFixture(t, m, c)
	stage, other := aws.String(f.stage), aws.String(f.other)

	stageMsg := "Stage not found: " + missingStage
	resourceMsg := "Resource not found: " + missingStage
	tests := []struct {
		name string
		call func() error
		want []string
	}{
		{"GetStage", func() error {
			_, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(missingStage)})
			return err
		}, []string{stageMsg}},
		{"UpdateStage", func() error {
			_, err := c.UpdateStage(ctx, &ivsrealtime.UpdateStageInput{Arn: aws.String(missingStage), Name: aws.String("x")})
			return err
		}, []string{stageMsg}},
		{"DeleteStage", func() error {
			_, err := c.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: aws.String(missingStage)})
			return err
		}, []string{stageMsg}},
		{"CreateParticipantToken", func() error {
			_, err := c.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(missingStage)})
			return err
		}, []string{stageMsg}},
		{"DisconnectParticipant unknown stage", func() error {
			_, err := c.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(missingStage), ParticipantId: aws.String(f.alice)})
			return err
		}, []string{"Participant " + f.alice + " not found in stage " + missingStage}},
		{"DisconnectParticipant unknown participant", func() error {
			_, err := c.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: stage, ParticipantId: aws.String(missingParticipant)})
			return err
		}, []string{"Participant " + missingParticipant + " not found in stage " + f.stage}},
		{"GetStageSession unknown stage", func() error {
			_, err := c.GetStageSession(ctx, &ivsrealtime.GetStageSessionInput{StageArn: aws.String(missingStage), SessionId: aws.String(f.session1)})
			return err
		}, []string{"Stage session " + f.session1 + " not found in stage " + missingStage}},
		{"GetStageSession unknown session", func() error {
			_, err := c.GetStageSession(ctx, &ivsrealtime.GetStageSessionInput{StageArn: stage, SessionId: aws.String(missingSession)})
			return err
		}, []string{"Stage session " + missingSession + " not found in stage " + f.stage}},
		{"GetStageSession session of another stage", func() error {
			_, err := c.GetStageSession(ctx, &ivsrealtime.GetStageSessionInput{StageArn: other, SessionId: aws.String(f.session1)})
			return err
		}, []string{"Stage session " + f.session1 + " not found in stage " + f.other}},
		{"GetParticipant unknown participant", func() error {
			_, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: stage, SessionId: aws.String(f.session1), ParticipantId: aws.String(missingParticipant)})
			return err
		}, []string{"Participant " + missingParticipant + " not found in stage session " + f.session1}},
		{"GetParticipant participant of another session", func() error {
			_, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: stage, SessionId: aws.String(f.session2), ParticipantId: aws.String(f.alice)})
			return err
		}, []string{"Participant " + f.alice + " not found in stage session " + f.session2}},
		{"GetParticipant unknown session", func() error {
			_, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: stage, SessionId: aws.String(missingSession), ParticipantId: aws.String(f.alice)})
			return err
		}, []string{"not found in stage session " + missingSession}},
		{"GetParticipant session of another stage", func() error {
			_, err := c.GetParticipant(ctx, &ivsrealtime.GetParticipantInput{StageArn: other, SessionId: aws.String(f.session1), ParticipantId: aws.String(f.alice)})
			return err
		}, []string{"Participant " + f.alice + " not found in stage session " + f.session1}},
		{"TagResource", func() error {
			_, err := c.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: aws.String(missingStage), Tags: map[string]string{"k": "v"}})
			return err
		}, []string{resourceMsg}},
		{"UntagResource", func() error {
			_, err := c.UntagResource(ctx, &ivsrealtime.UntagResourceInput{ResourceArn: aws.String(missingStage), TagKeys: []string{"k"}})
			return err
		}, []string{resourceMsg}},
		{"ListTagsForResource", func() error {
			_, err := c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: aws.String(missingStage)})
			return err
		}, []string{resourceMsg}},
	}
	before := state(t, m, c)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkError(t, tt.call(), notFound(tt.want...))
			if after := state(t, m, c); after != before {
				t.Errorf("state after a refused call got %v, want %v", after, before)
			}
		})
	}

	// The list operations' error lists have no ResourceNotFoundException:
	// listing what does not exist lists nothing.
	empty := []struct {
		name string
		call func() (int, *string, error)
	}{
		{"ListStageSessions unknown stage", func() (int, *string, error) {
			out, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(missingStage)})
			if err != nil {
				return 0, nil, err
			}
			return len(out.StageSessions), out.NextToken, nil
		}},
		{"ListParticipants unknown stage", func() (int, *string, error) {
			out, err := c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(missingStage), SessionId: aws.String(f.session1)})
			if err != nil {
				return 0, nil, err
			}
			return len(out.Participants), out.NextToken, nil
		}},
		{"ListParticipants unknown session", func() (int, *string, error) {
			out, err := c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: stage, SessionId: aws.String(missingSession)})
			if err != nil {
				return 0, nil, err
			}
			return len(out.Participants), out.NextToken, nil
		}},
		{"ListParticipants session of another stage", func() (int, *string, error) {
			out, err := c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: other, SessionId: aws.String(f.session1)})
			if err != nil {
				return 0, nil, err
			}
			return len(out.Participants), out.NextToken, nil
		}},
		{"ListParticipantEvents unknown participant", func() (int, *string, error) {
			out, err := c.ListParticipantEvents(ctx, &ivsrealtime.ListParticipantEventsInput{
				StageArn: stage, SessionId: aws.String(f.session1), ParticipantId: aws.String(missingParticipant)})
			if err != nil {
				return 0, nil, err
			}
			return len(out.Events), out.NextToken, nil
		}},
		{"ListParticipantEvents session of another stage", func() (int, *string, error) {
			out, err := c.ListParticipantEvents(ctx, &ivsrealtime.ListParticipantEventsInput{
				StageArn: other, SessionId: aws.String(f.session1), ParticipantId: aws.String(f.alice)})
			if err != nil {
				return 0, nil, err
			}
			return len(out.Events), out.NextToken, nil
		}},
	}
	for _, tt := range empty {
		t.Run(tt.name, func(t *testing.T) {
			n, next, err := tt.call()
			if err != nil {
				t.Fatalf("got %v, want an empty list", err)
			}
			if n != 0 || next != nil {
				t.Errorf("got %v items and nextToken %v, want none", n, aws.ToString(next))
			}
		})
	}
}

func TestQuota(t *testing.T) {
	t.Parallel()
	m, c := startServer(t, withMaxStages(2))
	ctx := testContext(t)
	first := createStage(t, c, "one")
	createStage(t, c, "two")

	quota := wantError{"ServiceQuotaExceededException", http.StatusPaymentRequired, []string{"Stage quota exceeded", "at most 2 stages"}}
	before := state(t, m, c)
	_, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{
		Name:                           aws.String("three"),
		Tags:                           map[string]string{"k": "v"},
		ParticipantTokenConfigurations: []types.ParticipantTokenConfiguration{{}, {}},
	})
	checkError(t, err, quota)
	if after := state(t, m, c); after != before {
		t.Errorf("state after a refused CreateStage got %v, want %v", after, before)
	}

	if _, err := c.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: aws.String(first)}); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	createStage(t, c, "three")
	_, err = c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("four")})
	checkError(t, err, quota)

	list, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{})
	if err != nil {
		t.Fatalf("ListStages: %v", err)
	}
	var names []string
	for _, s := range list.Stages {
		names = append(names, aws.ToString(s.Name))
	}
	checkJSON(t, "stages", names, []string{"two", "three"})
}

func TestPagination(t *testing.T) {
	t.Parallel()
	m, _ := startServer(t)
	c, log := newClient(t, m, testAccessKeyID, testSecretAccessKey)
	ctx := testContext(t)

	var arns []string
	for i := range 23 {
		arns = append(arns, createStage(t, c, fmt.Sprintf("stage-%02d", i)))
	}

	t.Run("ListStages", func(t *testing.T) {
		p := ivsrealtime.NewListStagesPaginator(c, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(5)})
		var got []string
		var sizes []int
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("NextPage: %v", err)
			}
			sizes = append(sizes, len(page.Stages))
			for _, s := range page.Stages {
				got = append(got, aws.ToString(s.Arn))
			}
		}
		checkJSON(t, "page sizes", sizes, []int{5, 5, 5, 5, 3})
		checkJSON(t, "stages in creation order", got, arns)

		// On the wire: a nextToken on every page but the last, which has
		// no nextToken key at all.
		pages := log.all("/ListStages")
		pages = pages[len(pages)-len(sizes):]
		for i, ex := range pages {
			var body map[string]json.RawMessage
			ex.decode(t, &body)
			_, has := body["nextToken"]
			if last := i == len(pages)-1; has == last {
				t.Errorf("page %d: nextToken present %v, want %v (%s)", i, has, !last, ex.Body)
			}
		}
	})

	t.Run("ListStages default and largest page", func(t *testing.T) {
		for _, tt := range []struct {
			name string
			n    *int32
		}{{"absent", nil}, {"100", aws.Int32(100)}, {"23", aws.Int32(23)}} {
			out, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: tt.n})
			if err != nil {
				t.Fatalf("ListStages: %v", err)
			}
			if len(out.Stages) != 23 || out.NextToken != nil {
				t.Errorf("maxResults %v: got %v stages and nextToken %v, want 23 and none", tt.name, len(out.Stages), aws.ToString(out.NextToken))
			}
			if body := string(log.last("/ListStages").Body); strings.Contains(body, `"nextToken"`) {
				t.Errorf("maxResults %v: body %s has a nextToken key, want none", tt.name, body)
			}
		}
	})

	// Seven sessions of the first stage; in the last, seven participants,
	// the first of whom has seven events.
	stage := ivsrt.StageARN(arns[0])
	var sessions []string
	for i := range 7 {
		ev := &ivsrt.Event{StageARN: stage, Name: ivsrt.EventJoined, ParticipantID: ivsrt.ParticipantID(fmt.Sprintf("solo%08d", i))}
		record(t, m, ev, &ivsrt.Event{StageARN: stage, Name: ivsrt.EventLeft, ParticipantID: ev.ParticipantID})
		sessions = append(sessions, string(ev.SessionID))
	}
	var participants []string
	for i := range 7 {
		id := ivsrt.ParticipantID(fmt.Sprintf("crowd%07d", i))
		ev := &ivsrt.Event{StageARN: stage, Name: ivsrt.EventJoined, ParticipantID: id, UserID: "crowd"}
		record(t, m, ev)
		participants = append(participants, string(id))
		if i == 0 {
			sessions = append(sessions, string(ev.SessionID))
		}
	}
	active := sessions[len(sessions)-1]
	first := ivsrt.ParticipantID(participants[0])
	for i := range 3 {
		record(t, m,
			&ivsrt.Event{StageARN: stage, Name: ivsrt.EventSubscribeStarted, ParticipantID: first, RemoteParticipantID: ivsrt.ParticipantID(participants[i+1])},
			&ivsrt.Event{StageARN: stage, Name: ivsrt.EventSubscribeStopped, ParticipantID: first, RemoteParticipantID: ivsrt.ParticipantID(participants[i+1])},
		)
	}

	t.Run("ListStageSessions", func(t *testing.T) {
		p := ivsrealtime.NewListStageSessionsPaginator(c, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(arns[0]), MaxResults: aws.Int32(3)})
		var got []string
		var sizes []int
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("NextPage: %v", err)
			}
			sizes = append(sizes, len(page.StageSessions))
			for _, s := range page.StageSessions {
				got = append(got, aws.ToString(s.SessionId))
			}
		}
		want := slices.Clone(sessions)
		slices.Reverse(want)
		checkJSON(t, "page sizes", sizes, []int{3, 3, 2})
		checkJSON(t, "sessions, newest first", got, want)
	})

	t.Run("ListParticipants", func(t *testing.T) {
		p := ivsrealtime.NewListParticipantsPaginator(c, &ivsrealtime.ListParticipantsInput{
			StageArn: aws.String(arns[0]), SessionId: aws.String(active), FilterByUserId: aws.String("crowd"), MaxResults: aws.Int32(3),
		})
		var got []string
		var sizes []int
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("NextPage: %v", err)
			}
			sizes = append(sizes, len(page.Participants))
			for _, s := range page.Participants {
				got = append(got, aws.ToString(s.ParticipantId))
			}
		}
		checkJSON(t, "page sizes", sizes, []int{3, 3, 1})
		checkJSON(t, "participants in join order", got, participants)
	})

	t.Run("ListParticipantEvents", func(t *testing.T) {
		p := ivsrealtime.NewListParticipantEventsPaginator(c, &ivsrealtime.ListParticipantEventsInput{
			StageArn: aws.String(arns[0]), SessionId: aws.String(active), ParticipantId: aws.String(participants[0]), MaxResults: aws.Int32(2),
		})
		var got []string
		var sizes []int
		for p.HasMorePages() {
			page, err := p.NextPage(ctx)
			if err != nil {
				t.Fatalf("NextPage: %v", err)
			}
			sizes = append(sizes, len(page.Events))
			for _, e := range page.Events {
				got = append(got, string(e.Name)+" "+aws.ToString(e.RemoteParticipantId))
			}
		}
		checkJSON(t, "page sizes", sizes, []int{2, 2, 2, 1})
		checkJSON(t, "events in order", got, []string{
			"JOINED ",
			"SUBSCRIBE_STARTED " + participants[1], "SUBSCRIBE_STOPPED " + participants[1],
			"SUBSCRIBE_STARTED " + participants[2], "SUBSCRIBE_STOPPED " + participants[2],
			"SUBSCRIBE_STARTED " + participants[3], "SUBSCRIBE_STOPPED " + participants[3],
		})
	})

	stagesToken := func(t *testing.T) string {
		t.Helper()
		out, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(5)})
		if err != nil || out.NextToken == nil {
			t.Fatalf("ListStages: %v, nextToken %v", err, out)
		}
		return *out.NextToken
	}
	participantsToken := func(t *testing.T, in ivsrealtime.ListParticipantsInput) string {
		t.Helper()
		in.StageArn, in.SessionId, in.MaxResults = aws.String(arns[0]), aws.String(active), aws.Int32(2)
		out, err := c.ListParticipants(ctx, &in)
		if err != nil || out.NextToken == nil {
			t.Fatalf("ListParticipants: %v, nextToken %v", err, out)
		}
		return *out.NextToken
	}
	invalid := validation("The nextToken is not valid")

	t.Run("token of another list", func(t *testing.T) {
		tok := stagesToken(t)
		_, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(arns[0]), NextToken: &tok})
		checkError(t, err, invalid)
		_, err = c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(arns[0]), SessionId: aws.String(active), NextToken: &tok})
		checkError(t, err, invalid)
	})

	t.Run("token of another stage", func(t *testing.T) {
		out, err := c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(arns[0]), MaxResults: aws.Int32(1)})
		if err != nil || out.NextToken == nil {
			t.Fatalf("ListStageSessions: %v, nextToken %v", err, out)
		}
		_, err = c.ListStageSessions(ctx, &ivsrealtime.ListStageSessionsInput{StageArn: aws.String(arns[1]), NextToken: out.NextToken})
		checkError(t, err, invalid)
	})

	t.Run("token of another filter", func(t *testing.T) {
		tok := participantsToken(t, ivsrealtime.ListParticipantsInput{FilterByUserId: aws.String("crowd")})
		_, err := c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{
			StageArn: aws.String(arns[0]), SessionId: aws.String(active), FilterByState: types.ParticipantStateConnected, NextToken: &tok})
		checkError(t, err, invalid)
		_, err = c.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{
			StageArn: aws.String(arns[0]), SessionId: aws.String(active), FilterByUserId: aws.String("crowd"), NextToken: &tok})
		if err != nil {
			t.Errorf("same filter: got %v, want the next page", err)
		}
	})

	t.Run("tampered token", func(t *testing.T) {
		tok := stagesToken(t)
		for _, i := range []int{0, 1, len(tok) / 2, len(tok) - 2} {
			b := []byte(tok)
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			tampered := string(b)
			_, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(5), NextToken: &tampered})
			checkError(t, err, invalid)
		}
		for _, tampered := range []string{tok[:len(tok)-1], tok + "A", tok[1:], "A" + tok} {
			_, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(5), NextToken: &tampered})
			checkError(t, err, invalid)
		}
	})

	t.Run("tokens survive a restart", func(t *testing.T) {
		tok := stagesToken(t)
		_, c2 := restartServer(t, m)
		out, err := c2.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(5), NextToken: &tok})
		if err != nil {
			t.Fatalf("ListStages after restart: %v", err)
		}
		var got []string
		for _, s := range out.Stages {
			got = append(got, aws.ToString(s.Arn))
		}
		checkJSON(t, "second page after restart", got, arns[5:10])

		// A server on another data folder has another key.
		_, c3 := startServer(t)
		_, err = c3.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(5), NextToken: &tok})
		checkError(t, err, invalid)
	})
}

func TestAuth(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	ctx := testContext(t)
	createStage(t, c, "existing")
	before := state(t, m, c)

	createAs := func(c *ivsrealtime.Client) error {
		_, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("intruder")})
		return err
	}
	wrongSecret, _ := newClient(t, m, testAccessKeyID, "wrong-secret")
	unknownKey, _ := newClient(t, m, "AKIDUNKNOWN000000000", testSecretAccessKey)
	anonymous, _ := newClientWith(t, m, aws.AnonymousCredentials{})
	tests := []struct {
		name   string
		client *ivsrealtime.Client
		want   wantError
	}{
		{"wrong secret", wrongSecret, wantError{"InvalidSignatureException", http.StatusForbidden,
			[]string{"The request signature we calculated does not match the signature you provided."}}},
		{"unknown key", unknownKey, wantError{"UnrecognizedClientException", http.StatusForbidden,
			[]string{"The security token included in the request is invalid."}}},
		{"unsigned", anonymous, wantError{"MissingAuthenticationTokenException", http.StatusForbidden,
			[]string{"Missing Authentication Token"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			checkError(t, createAs(tt.client), tt.want)
			_, err := tt.client.ListStages(ctx, &ivsrealtime.ListStagesInput{})
			checkError(t, err, tt.want)
			if after := state(t, m, c); after != before {
				t.Errorf("state after a refused call got %v, want %v", after, before)
			}
		})
	}

	t.Run("raw", func(t *testing.T) {
		ex := send(t, newRequest(t, m, "POST", "/CreateStage", `{"name":"x"}`))
		checkRawError(t, ex, wantError{"MissingAuthenticationTokenException", http.StatusForbidden, []string{"Missing Authentication Token"}})

		r := newSignedRequest(t, m, "POST", "/CreateStage", `{"name":"x"}`, testAccessKeyID, testSecretAccessKey)
		r.Body = http.NoBody
		r.ContentLength = 0
		ex = send(t, r)
		checkRawError(t, ex, wantError{"InvalidSignatureException", http.StatusForbidden, nil})

		// The body is signed: changing it breaks the signature.
		r = newSignedRequest(t, m, "POST", "/CreateStage", `{"name":"x"}`, testAccessKeyID, testSecretAccessKey)
		r.Body = io.NopCloser(strings.NewReader(`{"name":"y"}`))
		ex = send(t, r)
		checkRawError(t, ex, wantError{"InvalidSignatureException", http.StatusForbidden, []string{"does not match"}})

		ex = send(t, newSignedRequest(t, m, "POST", "/CreateStage", `{"name":"x"}`, "", ""))
		if ex.Status != http.StatusForbidden {
			t.Errorf("empty key: status got %v, want %v", ex.Status, http.StatusForbidden)
		}
		if after := state(t, m, c); after != before {
			t.Errorf("state after refused calls got %v, want %v", after, before)
		}
	})

	t.Run("dev mode accepts any key", func(t *testing.T) {
		dev, _ := startServer(t, withDev())
		for _, keys := range [][2]string{{"AKIDANYTHING", "whatever"}, {testAccessKeyID, "wrong"}} {
			c, _ := newClient(t, dev, keys[0], keys[1])
			arn := createStage(t, c, "dev")
			if _, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(arn)}); err != nil {
				t.Errorf("GetStage with %v: %v", keys, err)
			}
		}
		// Signing is still required.
		anonymous, _ := newClientWith(t, dev, aws.AnonymousCredentials{})
		_, err := anonymous.ListStages(ctx, &ivsrealtime.ListStagesInput{})
		checkError(t, err, wantError{"MissingAuthenticationTokenException", http.StatusForbidden, nil})
	})

	t.Run("generated credentials", func(t *testing.T) {
		dir := t.TempDir()
		m1, _ := startServer(t, withDataDir(dir), withoutKeys())
		path := filepath.Join(dir, "credentials.json")
		read := func() (stored secrets.Stored, raw []byte) {
			t.Helper()
			raw, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("read credentials: %v", err)
			}
			if err := json.Unmarshal(raw, &stored); err != nil {
				t.Fatalf("credentials.json %s: %v", raw, err)
			}
			return stored, raw
		}
		creds, raw := read()
		if creds.AccessKeyID == "" || len(creds.SecretAccessKey) < 40 {
			t.Fatalf("credentials.json got %s, want a key id and a secret of 40 characters", raw)
		}
		if info, err := os.Stat(path); err != nil {
			t.Errorf("stat credentials.json: %v", err)
		} else if got := info.Mode().Perm(); got != 0o600 {
			t.Errorf("credentials.json mode got %v, want %v", got, os.FileMode(0o600))
		}
		c1, _ := newClient(t, m1, creds.AccessKeyID, creds.SecretAccessKey)
		arn := createStage(t, c1, "kept")
		fixed, _ := newClient(t, m1, testAccessKeyID, testSecretAccessKey)
		_, err := fixed.ListStages(ctx, &ivsrealtime.ListStagesInput{})
		checkError(t, err, wantError{"UnrecognizedClientException", http.StatusForbidden, nil})

		m2, _ := restartServer(t, m1)
		again, raw2 := read()
		if string(raw2) != string(raw) {
			t.Errorf("credentials.json after restart got %s, want %s", raw2, raw)
		}
		c2, _ := newClient(t, m2, again.AccessKeyID, again.SecretAccessKey)
		if _, err := c2.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(arn)}); err != nil {
			t.Errorf("GetStage after restart: %v", err)
		}
	})
}

func TestUnknownOperation(t *testing.T) {
	t.Parallel()
	m, c := startServer(t)
	arn := createStage(t, c, "stage")
	before := state(t, m, c)
	tests := []struct{ method, path, body string }{
		{"POST", "/NoSuchOperation", `{}`},
		{"POST", "/", `{}`},
		{"POST", "/createstage", `{}`},
		{"POST", "/CreateStage/", `{}`},
		{"POST", "/v1/CreateStage", `{}`},
		{"GET", "/CreateStage", ``},
		{"PUT", "/CreateStage", `{}`},
		{"DELETE", "/DeleteStage", `{"arn":"` + arn + `"}`},
		{"GET", "/GetStage", ``},
		{"PUT", tagsPath(arn), `{"tags":{"a":"b"}}`},
		{"PATCH", tagsPath(arn), `{"tags":{"a":"b"}}`},
		{"GET", "/tags", ``},
		{"POST", "/CreateChannel", `{}`}, // of the IVS low-latency API, not this one
	}
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			ex := signedRequest(t, m, tt.method, tt.path, tt.body)
			checkRawError(t, ex, wantError{"UnknownOperationException", http.StatusNotFound, nil})
			if after := state(t, m, c); after != before {
				t.Errorf("state after an unknown operation got %v, want %v", after, before)
			}
		})
	}
}

// TestErrorBody checks the error shape a client sees, the same in raw form
// and through the SDK, for each status the server sends.
func TestErrorBody(t *testing.T) {
	t.Parallel()
	m, c := startServer(t, withMaxStages(1))
	ctx := testContext(t)
	createStage(t, c, "only")

	tests := []struct {
		name               string
		method, path       string
		body               string
		call               func() error
		status             int
		exception, message string
	}{
		{"validation", "POST", "/CreateStage", `{"name":"a b"}`, func() error {
			_, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("a b")})
			return err
		}, 400, "ValidationException", "1 validation error detected: Value 'a b' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*"},
		{"not found", "POST", "/GetStage", `{"arn":"` + missingStage + `"}`, func() error {
			_, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(missingStage)})
			return err
		}, 404, "ResourceNotFoundException", "Stage not found: " + missingStage},
		{"quota", "POST", "/CreateStage", `{}`, func() error {
			_, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{})
			return err
		}, 402, "ServiceQuotaExceededException", "Stage quota exceeded: this account may have at most 1 stages."},
		{"not found on tags", "GET", tagsPath(missingStage), ``, func() error {
			_, err := c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: aws.String(missingStage)})
			return err
		}, 404, "ResourceNotFoundException", "Resource not found: " + missingStage},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := signedRequest(t, m, tt.method, tt.path, tt.body)
			if ex.Status != tt.status {
				t.Errorf("status got %v, want %v", ex.Status, tt.status)
			}
			if got := ex.Header.Get("x-amzn-ErrorType"); got != tt.exception {
				t.Errorf("x-amzn-ErrorType got %v, want %v", got, tt.exception)
			}
			var body map[string]string
			ex.decode(t, &body)
			checkJSON(t, "body", body, map[string]string{"message": tt.message, "exceptionMessage": tt.message})
			checkError(t, tt.call(), wantError{tt.exception, tt.status, []string{tt.message}})
		})
	}
}

var update = flag.Bool("update", false, "rewrite the golden files in testdata with what the server sends")

// transcript records raw exchanges in a stable form: identifiers, times,
// tokens and addresses are replaced by placeholders numbered in order of
// first appearance.
type transcript struct {
	m     *Main
	buf   strings.Builder
	names map[string]string // identifier → placeholder
	count map[string]int    // kind → placeholders handed out
}

var (
	timePattern       = regexp.MustCompile(`\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z`)
	jwtPattern        = regexp.MustCompile(`eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+`)
	stageIDPattern    = regexp.MustCompile(`stage/[a-zA-Z0-9]{12}`)
	sessionIDPattern  = regexp.MustCompile(`st-[a-zA-Z0-9]{13}`)
	nextTokenPattern  = regexp.MustCompile(`"nextToken": "[^"]+"`)
	participantFields = regexp.MustCompile(`"(?:participantId|remoteParticipantId)": "([a-zA-Z0-9]{12})"`)
)

func (tr *transcript) placeholder(kind, id string) string {
	if p, ok := tr.names[id]; ok {
		return p
	}
	tr.count[kind]++
	p := fmt.Sprintf("<%s-%d>", kind, tr.count[kind])
	tr.names[id] = p
	return p
}

func (tr *transcript) normalize(s string) string {
	for _, m := range participantFields.FindAllStringSubmatch(s, -1) {
		tr.placeholder("participant", m[1])
	}
	for id, p := range tr.names {
		if strings.HasPrefix(p, "<participant-") {
			s = strings.ReplaceAll(s, id, p)
		}
	}
	s = stageIDPattern.ReplaceAllStringFunc(s, func(id string) string { return "stage/" + tr.placeholder("stage", id) })
	s = sessionIDPattern.ReplaceAllStringFunc(s, func(id string) string { return tr.placeholder("session", id) })
	s = timePattern.ReplaceAllString(s, "<time>")
	s = jwtPattern.ReplaceAllString(s, "<token>")
	s = nextTokenPattern.ReplaceAllString(s, `"nextToken": "<nextToken>"`)
	// The RTMP endpoint has a port of its own, any free one in tests.
	s = rtmpPortPattern.ReplaceAllString(s, "${1}<rtmp-port>/")
	return strings.ReplaceAll(s, tr.m.Addr(), "<addr>")
}

var rtmpPortPattern = regexp.MustCompile(`(rtmps?://[^:/"]+:)[0-9]+/`)

func indentJSON(t testing.TB, b []byte) string {
	if len(b) == 0 {
		return ""
	}
	var out bytes.Buffer
	if err := json.Indent(&out, b, "", "  "); err != nil {
		t.Fatalf("indent %s: %v", b, err)
	}
	return out.String()
}

// do sends a signed request, records it and its response, and returns the
// exchange.
func (tr *transcript) do(t *testing.T, method, path, body string) exchange {
	t.Helper()
	ex := signedRequest(t, tr.m, method, path, body)
	unescaped, _ := url.PathUnescape(path)
	fmt.Fprintf(&tr.buf, "### %s %s\n", method, unescaped)
	if body != "" {
		fmt.Fprintf(&tr.buf, "%s\n", indentJSON(t, []byte(body)))
	}
	status := strconv.Itoa(ex.Status)
	if name := ex.Header.Get("x-amzn-ErrorType"); name != "" {
		status += " " + name
	}
	fmt.Fprintf(&tr.buf, "--- %s\n%s\n\n", status, indentJSON(t, ex.Body))
	return ex
}

// TestWireGolden pins the JSON the server sends for every operation, field
// names and order included, against testdata/wire.golden. Run with -update
// to rewrite it after a deliberate change.
func TestWireGolden(t *testing.T) {
	t.Parallel()
	m, _ := startServer(t)
	withTestStorage(t, m)
	tr := &transcript{m: m, names: map[string]string{}, count: map[string]int{}}
	s := fmt.Sprintf

	var created struct {
		Stage             struct{ Arn string }
		ParticipantTokens []struct{ ParticipantID string }
	}
	tr.do(t, "POST", "/CreateStage", `{"name":"golden","tags":{"env":"test"},`+
		`"participantTokenConfigurations":[{"userId":"alice","attributes":{"role":"host"},"duration":60,"capabilities":["PUBLISH"]}],`+
		`"autoParticipantRecordingConfiguration":{"storageConfigurationArn":"`+storageARN+`"}}`).decode(t, &created)
	arn, alice := created.Stage.Arn, created.ParticipantTokens[0].ParticipantID
	tr.do(t, "POST", "/CreateStage", `{}`)
	tr.do(t, "POST", "/GetStage", s(`{"arn":%q}`, arn))
	tr.do(t, "POST", "/UpdateStage", s(`{"arn":%q,"name":"renamed"}`, arn))
	tr.do(t, "POST", "/ListStages", `{"maxResults":1}`)
	var tok struct {
		ParticipantToken struct{ ParticipantID string }
	}
	tr.do(t, "POST", "/CreateParticipantToken", s(`{"stageArn":%q}`, arn)).decode(t, &tok)
	bob := tok.ParticipantToken.ParticipantID
	tr.do(t, "POST", tagsPath(arn), `{"tags":{"team":"video","owner":"ops"}}`)
	tr.do(t, "DELETE", tagsPath(arn)+"?tagKeys=env&tagKeys=owner", ``)
	tr.do(t, "GET", tagsPath(arn), ``)

	stage := ivsrt.StageARN(arn)
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 6e6, time.UTC)
	joined := &ivsrt.Event{StageARN: stage, Name: ivsrt.EventJoined, ParticipantID: ivsrt.ParticipantID(alice),
		UserID: "alice", Attributes: map[string]string{"role": "host"}, Protocol: "WHIP", Time: t0}
	record(t, m,
		joined,
		&ivsrt.Event{StageARN: stage, Name: ivsrt.EventPublishStarted, ParticipantID: ivsrt.ParticipantID(alice), Time: t0.Add(time.Second)},
		&ivsrt.Event{StageARN: stage, Name: ivsrt.EventJoined, ParticipantID: ivsrt.ParticipantID(bob), Time: t0.Add(2 * time.Second)},
		&ivsrt.Event{StageARN: stage, Name: ivsrt.EventSubscribeStarted, ParticipantID: ivsrt.ParticipantID(bob),
			RemoteParticipantID: ivsrt.ParticipantID(alice), Time: t0.Add(3 * time.Second)},
		&ivsrt.Event{StageARN: stage, Name: ivsrt.EventSubscribeError, ParticipantID: ivsrt.ParticipantID(bob),
			RemoteParticipantID: ivsrt.ParticipantID(alice), ErrorCode: ivsrt.ErrPublisherNotFound, Time: t0.Add(4 * time.Second)},
		&ivsrt.Event{StageARN: stage, Name: ivsrt.EventLeft, ParticipantID: ivsrt.ParticipantID(bob), Time: t0.Add(5 * time.Second)},
	)
	session := string(joined.SessionID)
	tr.do(t, "POST", "/ListStageSessions", s(`{"stageArn":%q}`, arn))
	tr.do(t, "POST", "/GetStageSession", s(`{"stageArn":%q,"sessionId":%q}`, arn, session))
	tr.do(t, "POST", "/ListParticipants", s(`{"stageArn":%q,"sessionId":%q}`, arn, session))
	tr.do(t, "POST", "/GetParticipant", s(`{"stageArn":%q,"sessionId":%q,"participantId":%q}`, arn, session, alice))
	tr.do(t, "POST", "/ListParticipantEvents", s(`{"stageArn":%q,"sessionId":%q,"participantId":%q}`, arn, session, bob))
	tr.do(t, "POST", "/DisconnectParticipant", s(`{"stageArn":%q,"participantId":%q,"reason":"bye"}`, arn, alice))
	tr.do(t, "POST", "/GetStage", s(`{"arn":%q}`, missingStage))
	tr.do(t, "POST", "/CreateStage", `{"name":5}`)
	tr.do(t, "PUT", tagsPath(arn), `{"tags":{}}`)
	tr.do(t, "POST", "/DeleteStage", s(`{"arn":%q}`, arn))

	got := tr.normalize(tr.buf.String())
	path := filepath.Join("testdata", "wire.golden")
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create it): %v", err)
	}
	if got != string(want) {
		t.Errorf("wire transcript differs from %s (run with -update after a deliberate change):\n%s", path, lineDiff(string(want), got))
	}
}

// lineDiff shows the first lines where got and want differ.
func lineDiff(want, got string) string {
	w, g := strings.Split(want, "\n"), strings.Split(got, "\n")
	var out []string
	for i := 0; i < max(len(w), len(g)) && len(out) < 20; i++ {
		var wl, gl string
		if i < len(w) {
			wl = w[i]
		}
		if i < len(g) {
			gl = g[i]
		}
		if wl != gl {
			out = append(out, fmt.Sprintf("line %d: got %q, want %q", i+1, gl, wl))
		}
	}
	return strings.Join(out, "\n")
}
