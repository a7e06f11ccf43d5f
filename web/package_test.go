package web_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
)

// TestClientPackage resolves the client package as a bundler does
// (Node's resolution of package.json "exports") and checks that the IVS
// Stage module exports every name an IVS app imports, with the
// documented values of the enumerations.
func TestClientPackage(t *testing.T) {
	node, err := exec.LookPath("node")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("node is not installed: CI must run this test")
		}
		t.Skip("node is not installed")
	}
	client, err := filepath.Abs("client")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "node_modules", "@ivsrt"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(client, filepath.Join(dir, "node_modules", "@ivsrt", "client")); err != nil {
		t.Fatal(err)
	}
	script := `import * as ivs from "@ivsrt/client/ivs-stage";
import * as own from "@ivsrt/client";
console.log(JSON.stringify({ names: Object.keys(ivs), own: Object.keys(own),
	events: ivs.StageEvents, subscribe: ivs.SubscribeType, codes: ivs.StageErrorCode, left: ivs.StageLeftReason }));`
	if err := os.WriteFile(filepath.Join(dir, "app.mjs"), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(node, "app.mjs")
	cmd.Dir = dir
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("node: %v\n%s", err, out)
	}
	var got struct {
		Names     []string          `json:"names"`
		Own       []string          `json:"own"`
		Events    map[string]string `json:"events"`
		Subscribe map[string]string `json:"subscribe"`
		Codes     map[string]int    `json:"codes"`
		Left      map[string]string `json:"left"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for _, name := range []string{"Stage", "LocalStageStream", "RemoteStageStream", "StageStream", "StageError", "Errors",
		"StageEvents", "StageConnectionState", "StageParticipantPublishState", "StageParticipantSubscribeState",
		"SubscribeType", "StreamType", "StageLeftReason", "StageErrorCategory", "StageErrorCode",
		"InitialLayerPreference", "JitterBufferMinDelay", "StageStreamLayerSelectedReason",
		"RemoteStageStreamEvents", "LocalStageStreamEvents", "NetworkQuality", "SimulcastLayerPresets",
		"STAGE_MAX_BITRATE", "STAGE_MIN_BITRATE", "STAGE_MAX_FRAMERATE", "STAGE_MIN_FRAMERATE"} {
		if !slices.Contains(got.Names, name) {
			t.Errorf("ivs-stage exports no %s", name)
		}
	}
	if !slices.Contains(got.Own, "Stage") {
		t.Errorf("the package's main module exports %v, want ivsrt.js's Stage", got.Own)
	}
	for name, want := range map[string]string{
		"STAGE_CONNECTION_STATE_CHANGED":          "stageConnectionStateChanged",
		"STAGE_PARTICIPANT_JOINED":                "stageParticipantJoined",
		"STAGE_PARTICIPANT_STREAMS_ADDED":         "stageParticipantStreamsAdded",
		"STAGE_PARTICIPANT_PUBLISH_STATE_CHANGED": "stageParticipantPublishStateChanged",
		"STAGE_LEFT": "stageLeft",
		"ERROR":      "error",
	} {
		if got.Events[name] != want {
			t.Errorf("StageEvents.%s got %q, want %q", name, got.Events[name], want)
		}
	}
	if got.Subscribe["AUDIO_ONLY"] != "audio_only" || got.Codes["PARTICIPANT_DISCONNECTED"] != 10 || got.Left["USER_INITIATED"] != "user-initiated" {
		t.Errorf("enumerations got %v %v %v", got.Subscribe, got.Codes, got.Left)
	}
}
