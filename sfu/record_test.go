package sfu_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	awssdk "github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/internal/testmedia"
	"github.com/ivsrt/ivsrt/objectstore/folder"
	"github.com/ivsrt/ivsrt/recording"
	"github.com/ivsrt/ivsrt/sfu"
)

// recordingLog keeps what the server says of recordings.
type recordingLog struct {
	mu  sync.Mutex
	got []sfu.RecordingInfo
}

func (l *recordingLog) RecordingStateChanged(_ context.Context, info sfu.RecordingInfo) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.got = append(l.got, info)
}

func (l *recordingLog) states() []recording.State {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []recording.State
	for _, i := range l.got {
		out = append(out, i.State)
	}
	return out
}

func (l *recordingLog) last() sfu.RecordingInfo {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.got) == 0 {
		return sfu.RecordingInfo{}
	}
	return l.got[len(l.got)-1]
}

// recordingStorage creates the storage configuration of the bucket
// "recordings".
func recordingStorage(t *testing.T, h *harness) *ivsrt.StorageConfiguration {
	t.Helper()
	sc := &ivsrt.StorageConfiguration{ARN: ivsrt.NewStorageConfigurationARN("us-east-1", "123456789012", ivsrt.NewStorageConfigurationID()),
		Name: "recordings", S3BucketName: "recordings"}
	if err := h.db.CreateStorageConfiguration(testContext(t), sc); err != nil {
		t.Fatal(err)
	}
	return sc
}

// recordingFixture returns a server that records into buckets that are
// folders under root, telling recording states to log, and the storage
// configuration of its bucket "recordings".
func recordingFixture(t *testing.T) (h *harness, root string, log *recordingLog, sc *ivsrt.StorageConfiguration) {
	t.Helper()
	root = t.TempDir()
	objects, err := folder.New(root)
	if err != nil {
		t.Fatal(err)
	}
	log = &recordingLog{}
	h = newHarness(t, sfu.WithRecording(objects, log))
	return h, root, log, recordingStorage(t, h)
}

// sendMedia sends m in real time, as a browser would, until it is all
// sent or the publisher stops.
func sendMedia(m testmedia.Media) func(p *publisher, video, audio *webrtc.TrackLocalStaticRTP) {
	return func(p *publisher, video, audio *webrtc.TrackLocalStaticRTP) {
		defer close(p.done)
		select {
		case <-p.connected:
		case <-p.stop:
			return
		}
		pay := &codecs.H264Payloader{}
		start := time.Now()
		var vseq, aseq uint16
		fi, ai := 0, 0
		for fi < len(m.Frames) || ai < len(m.Opus) {
			vAt := time.Duration(fi) * time.Second / 30
			aAt := time.Duration(ai) * 20 * time.Millisecond
			next := min(vAt, aAt)
			if fi >= len(m.Frames) {
				next = aAt
			} else if ai >= len(m.Opus) {
				next = vAt
			}
			select {
			case <-p.stop:
				return
			case <-time.After(time.Until(start.Add(next))):
			}
			if fi < len(m.Frames) && vAt <= next && video != nil {
				var pkts [][]byte
				for _, nalu := range m.Frames[fi] {
					pkts = append(pkts, pay.Payload(1200, append([]byte{0, 0, 0, 1}, nalu...))...)
				}
				for j, b := range pkts {
					video.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: vseq, Timestamp: uint32(fi * 3000),
						Marker: j == len(pkts)-1}, Payload: b})
					vseq++
				}
				fi++
			}
			if ai < len(m.Opus) && aAt <= next && audio != nil {
				audio.WriteRTP(&rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: aseq, Timestamp: uint32(ai * 960)}, Payload: m.Opus[ai]})
				aseq++
				ai++
			}
		}
		<-p.stop
	}
}

// TestRecordPublisher: a publisher on a stage configured to record is
// recorded as IVS does: the objects under its prefix, its metadata, and
// an HLS rendition that plays with what was published.
func TestRecordPublisher(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m := testmedia.Encode(t, 6)
	h, root, log, sc := recordingFixture(t)
	ctx := testContext(t)
	arn := h.createStage("recorded")
	if _, err := h.db.UpdateStage(ctx, ivsrt.StageARN(arn), ivsrt.StageUpdate{AutoParticipantRecording: &ivsrt.AutoParticipantRecording{
		StorageConfigurationARN: string(sc.ARN), MediaTypes: []string{"AUDIO_VIDEO"}, HLSTargetSegmentDurationSeconds: 2,
		Thumbnail: &ivsrt.ThumbnailConfiguration{RecordingMode: "INTERVAL", TargetIntervalSeconds: 2, Storage: []string{"SEQUENTIAL", "LATEST"}}}}); err != nil {
		t.Fatal(err)
	}
	tok := h.token(arn, "alice")
	pub := h.mustPublish(awssdk.ToString(tok.Token), h264, true, withSender(sendMedia(m)))

	deadline := time.Now().Add(testTimeout)
	for log.last().State != recording.Active {
		if time.Now().After(deadline) {
			t.Fatalf("recording states %v, want it ACTIVE", log.states())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(6500 * time.Millisecond) // all of the media
	h.delete(pub.location)
	pub.halt()
	for s := log.last().State; s != recording.Stopped && s != recording.Failed; s = log.last().State {
		if time.Now().After(deadline) {
			t.Fatalf("recording states %v, want it to end", log.states())
		}
		time.Sleep(20 * time.Millisecond)
	}
	info := log.last()
	if info.State != recording.Stopped || info.Bucket != "recordings" || info.ParticipantID != ivsrt.ParticipantID(awssdk.ToString(tok.ParticipantId)) {
		t.Fatalf("recording ended %+v; states %v", info, log.states())
	}
	if info.Duration < 5*time.Second {
		t.Errorf("recorded %v of 6 s", info.Duration)
	}
	stageID := arn[strings.LastIndexByte(arn, '/')+1:]
	if !strings.HasPrefix(info.Prefix, stageID+"/"+string(info.SessionID)+"/"+string(info.ParticipantID)+"/") {
		t.Errorf("prefix %q", info.Prefix)
	}
	dir := filepath.Join(root, "recordings", filepath.FromSlash(info.Prefix))
	p := testmedia.FFprobe(t, filepath.Join(dir, filepath.FromSlash(recording.MultivariantKey)))
	if d := p.Duration(t); d < 5*time.Second || d > 6500*time.Millisecond {
		t.Errorf("the recording plays %v, want about the 6 s published", d)
	}
	var kinds []string
	for _, s := range p.Streams {
		kinds = append(kinds, s.CodecType+":"+s.CodecName)
	}
	if len(kinds) != 2 {
		t.Errorf("streams %v, want H.264 and Opus", kinds)
	}
	if thumbs, _ := filepath.Glob(filepath.Join(dir, filepath.FromSlash(recording.ThumbnailDir), "*.jpg")); len(thumbs) < 2 {
		t.Errorf("thumbnails %v, want about one every 2 s", thumbs)
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(recording.LatestKey))); err != nil {
		t.Errorf("latest thumbnail: %v", err)
	}
	// The API's view and the events agree.
	part, err := h.db.GetParticipant(ctx, ivsrt.StageARN(arn), info.SessionID, info.ParticipantID)
	if err != nil {
		t.Fatal(err)
	}
	if part.RecordingState != ivsrt.RecordingStopped || part.RecordingBucket != "recordings" || part.RecordingPrefix != info.Prefix {
		t.Errorf("participant's recording: %q %q %q", part.RecordingState, part.RecordingBucket, part.RecordingPrefix)
	}
	evs, err := h.db.ReadEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, ev := range evs {
		if ev.DetailType == ivsrt.DetailTypeRecordingStateChange {
			names = append(names, ev.EventName())
			if ev.Detail["recording_s3_key_prefix"] != info.Prefix || ev.Detail["recording_s3_bucket_name"] != "recordings" {
				t.Errorf("event %v", ev.Detail)
			}
		}
	}
	if strings.Join(names, ",") != "Recording Start,Recording End" {
		t.Errorf("recording events %v, want Recording Start, Recording End", names)
	}
	var meta map[string]any
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(recording.EndedKey)))
	if err != nil {
		t.Fatal(err)
	}
	json.Unmarshal(b, &meta)
	if meta["recording_status"] != "RECORDING_ENDED" || meta["stage_arn"] != arn {
		t.Errorf("recording-ended.json:\n%s", b)
	}
}

// videoPayloadOrder returns the payload types of the answer's video
// m-line, in order.
func videoPayloadOrder(t *testing.T, answer string) []string {
	t.Helper()
	for _, line := range strings.Split(answer, "\n") {
		if strings.HasPrefix(line, "m=video ") {
			f := strings.Fields(strings.TrimSpace(line))
			return f[3:]
		}
	}
	t.Fatalf("no video in the answer:\n%s", answer)
	return nil
}

// TestRecordingStagePrefersH264: a publisher offering VP8 then H.264 is
// answered H.264 first on a stage that records video, VP8 first (its own
// order) on one that does not.
func TestRecordingStagePrefersH264(t *testing.T) {
	objects, err := folder.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, sfu.WithRecording(objects, nil))
	ctx := testContext(t)
	sc := recordingStorage(t, h)
	recorded := h.createStage("recorded")
	if _, err := h.db.UpdateStage(ctx, ivsrt.StageARN(recorded), ivsrt.StageUpdate{AutoParticipantRecording: &ivsrt.AutoParticipantRecording{
		StorageConfigurationARN: string(sc.ARN), MediaTypes: []string{"AUDIO_VIDEO"}}}); err != nil {
		t.Fatal(err)
	}
	plain := h.createStage("plain")
	for _, tc := range []struct {
		stage, want string
	}{{recorded, "102"}, {plain, "96"}} {
		pc, _ := newClientPC(t, vp8, h264)
		if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly}); err != nil {
			t.Fatal(err)
		}
		tok := h.token(tc.stage, "alice")
		answer, loc, err := h.post("/whip", awssdk.ToString(tok.Token), offer(t, pc))
		if err != nil {
			t.Fatal(err)
		}
		if got := videoPayloadOrder(t, answer); len(got) == 0 || got[0] != tc.want {
			t.Errorf("stage %s: video payload types %v, want %s first", tc.stage, got, tc.want)
		}
		h.delete(loc)
		pc.Close()
	}
}

// TestRecordVP8Fails: a publisher that can only send VP8 on a stage that
// records video is not recorded silently: its recording is FAILED, with
// the start failure event, and says why.
func TestRecordVP8Fails(t *testing.T) {
	objects, err := folder.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	log := &recordingLog{}
	h := newHarness(t, sfu.WithRecording(objects, log))
	ctx := testContext(t)
	sc := recordingStorage(t, h)
	arn := h.createStage("recorded")
	if _, err := h.db.UpdateStage(ctx, ivsrt.StageARN(arn), ivsrt.StageUpdate{AutoParticipantRecording: &ivsrt.AutoParticipantRecording{
		StorageConfigurationARN: string(sc.ARN), MediaTypes: []string{"AUDIO_VIDEO"}}}); err != nil {
		t.Fatal(err)
	}
	tok := h.token(arn, "alice")
	pub := h.mustPublish(awssdk.ToString(tok.Token), vp8, true)
	defer pub.halt()
	deadline := time.Now().Add(testTimeout)
	for log.last().State != recording.Failed {
		if time.Now().After(deadline) {
			t.Fatalf("recording states %v, want FAILED", log.states())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err := log.last().Err; err == nil || !strings.Contains(err.Error(), "VP8") {
		t.Errorf("failure %v, want it to name VP8", err)
	}
	evs, err := h.db.ReadEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	found := false
	for _, ev := range evs {
		found = found || ev.DetailType == ivsrt.DetailTypeRecordingStateChange && ev.EventName() == ivsrt.StreamRecordingStartFailure
	}
	if !found {
		t.Error("no Recording Start Failure event")
	}
}

// TestInterruptedRecordingFails: a recording left ACTIVE by a run that
// crashed is FAILED at the next start, with its end failure event and
// recording-failed.json.
func TestInterruptedRecordingFails(t *testing.T) {
	root := t.TempDir()
	objects, err := folder.New(root)
	if err != nil {
		t.Fatal(err)
	}
	h := newHarness(t, sfu.WithRecording(objects, nil))
	ctx := testContext(t)
	arn := ivsrt.StageARN(h.createStage("crashed"))
	tok := h.token(string(arn), "alice")
	pid := ivsrt.ParticipantID(awssdk.ToString(tok.ParticipantId))
	joined := &ivsrt.Event{StageARN: arn, Name: ivsrt.EventJoined, ParticipantID: pid}
	if err := h.db.RecordEvent(ctx, joined); err != nil {
		t.Fatal(err)
	}
	prefix := recording.Prefix(arn, joined.SessionID, pid, time.Now())
	if err := h.db.SetParticipantRecording(ctx, &ivsrt.ParticipantRecording{StageARN: arn, SessionID: joined.SessionID, ParticipantID: pid,
		Bucket: "recordings", Prefix: prefix, State: ivsrt.RecordingActive, StreamEvent: ivsrt.StreamRecordingStart}); err != nil {
		t.Fatal(err)
	}
	if _, err := h.sfu.EndStaleSessions(ctx); err != nil {
		t.Fatal(err)
	}
	p, err := h.db.GetParticipant(ctx, arn, joined.SessionID, pid)
	if err != nil {
		t.Fatal(err)
	}
	if p.RecordingState != ivsrt.RecordingFailed || p.State != ivsrt.ParticipantDisconnected {
		t.Errorf("after the restart: recording %s, participant %s; want FAILED, DISCONNECTED", p.RecordingState, p.State)
	}
	b, err := os.ReadFile(filepath.Join(root, "recordings", filepath.FromSlash(prefix), filepath.FromSlash(recording.FailedKey)))
	if err != nil || !strings.Contains(string(b), "RECORDING_ENDED_WITH_FAILURE") {
		t.Errorf("recording-failed.json: %s, %v", b, err)
	}
	evs, err := h.db.ReadEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	var last string
	for _, ev := range evs {
		if ev.DetailType == ivsrt.DetailTypeRecordingStateChange {
			last = ev.EventName()
		}
	}
	if last != ivsrt.StreamRecordingEndFailure {
		t.Errorf("last recording event %q, want Recording End Failure", last)
	}
}

// TestRecordReconnectWindow: a publisher that stops and comes back
// within the stage's recordingReconnectWindowSeconds continues the same
// recording (one prefix, one Recording Start and End), the playlist
// marking the break and giving the smaller video it comes back with an
// init segment of its own, and the time away is not recorded. Once the
// window passes, the recording ends; a publisher back after that starts
// another.
func TestRecordReconnectWindow(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	first, smaller := testmedia.Encode(t, 4), testmedia.EncodeSize(t, 4, 320, 180)
	h, root, log, sc := recordingFixture(t)
	ctx := testContext(t)
	arn := h.createStage("reconnecting")
	const window = 3 * time.Second
	if _, err := h.db.UpdateStage(ctx, ivsrt.StageARN(arn), ivsrt.StageUpdate{AutoParticipantRecording: &ivsrt.AutoParticipantRecording{
		StorageConfigurationARN: string(sc.ARN), HLSTargetSegmentDurationSeconds: 2, RecordingReconnectWindowSeconds: int(window / time.Second)}}); err != nil {
		t.Fatal(err)
	}
	tok := h.token(arn, "alice")
	// Alice's events connection keeps her in the stage, and the stage
	// session going, while she does not publish.
	h.dialEvents(awssdk.ToString(tok.Token))
	waitState := func(want recording.State) {
		t.Helper()
		deadline := time.Now().Add(testTimeout)
		for log.last().State != want {
			if time.Now().After(deadline) {
				t.Fatalf("recording states %v, want %s", log.states(), want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	publishAll := func(m testmedia.Media) {
		t.Helper()
		pub := h.mustPublish(awssdk.ToString(tok.Token), h264, true, withSender(sendMedia(m)))
		time.Sleep(time.Duration(len(m.Frames))*time.Second/30 + 500*time.Millisecond)
		h.delete(pub.location)
		pub.halt()
	}

	publishAll(first)
	waitState(recording.Active)
	time.Sleep(window / 2)
	if s := log.states(); s[len(s)-1] != recording.Active {
		t.Fatalf("recording states %v while the publisher is away within the window, want it still ACTIVE", s)
	}
	publishAll(smaller)
	waitState(recording.Stopped)
	infos := func() []sfu.RecordingInfo {
		log.mu.Lock()
		defer log.mu.Unlock()
		return append([]sfu.RecordingInfo(nil), log.got...)
	}()
	prefix := infos[0].Prefix
	for _, i := range infos {
		if i.Prefix != prefix {
			t.Fatalf("recordings %+v, want one prefix", infos)
		}
	}
	if got := log.states(); got[0] != recording.Starting || strings.Count(fmtStates(got), string(recording.Starting)) != 1 {
		t.Errorf("states %v, want one recording", got)
	}
	dir := filepath.Join(root, "recordings", filepath.FromSlash(prefix))
	pl, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(recording.PlaylistKey)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Count(string(pl), "#EXT-X-DISCONTINUITY") != 1 || !strings.Contains(string(pl), `#EXT-X-MAP:URI="init-2.mp4"`) {
		t.Errorf("playlist:\n%s", pl)
	}
	if d := testmedia.FFprobe(t, filepath.Join(dir, filepath.FromSlash(recording.MultivariantKey))).Duration(t); d < 7*time.Second || d > 8500*time.Millisecond {
		t.Errorf("the recording plays %v, want the 8 s published without the time away", d)
	}
	if d := infos[len(infos)-1].Duration; d < 7*time.Second || d > 8500*time.Millisecond {
		t.Errorf("recorded duration %v, want 8 s", d)
	}
	var names []string
	evs, err := h.db.ReadEvents(ctx, 0, 1000)
	if err != nil {
		t.Fatal(err)
	}
	for _, ev := range evs {
		if ev.DetailType == ivsrt.DetailTypeRecordingStateChange {
			names = append(names, ev.EventName())
		}
	}
	if strings.Join(names, ",") != "Recording Start,Recording End" {
		t.Errorf("recording events %v, want one Start and one End", names)
	}

	// Back after the window: another recording.
	publishAll(first)
	waitState(recording.Active)
	if p := log.last().Prefix; p == prefix || p == "" {
		t.Errorf("a publisher back after the window recorded under %q, want a new prefix", p)
	}
}

func fmtStates(states []recording.State) string {
	var b strings.Builder
	for _, s := range states {
		b.WriteString(string(s) + " ")
	}
	return b.String()
}

// TestRecordReplica: a replica publishing in a stage that records is
// recorded under the destination's stage and session, with the source's
// media, until the replication stops; a stage whose configuration says
// recordParticipantReplicas false records its own publishers only.
func TestRecordReplica(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m := testmedia.Encode(t, 8)
	h, root, log, sc := recordingFixture(t)
	ctx := testContext(t)
	source, dest, unrecorded := h.createStage("source"), h.createStage("recorded"), h.createStage("replicas-unrecorded")
	for arn, replicas := range map[string]bool{dest: true, unrecorded: false} {
		if _, err := h.db.UpdateStage(ctx, ivsrt.StageARN(arn), ivsrt.StageUpdate{AutoParticipantRecording: &ivsrt.AutoParticipantRecording{
			StorageConfigurationARN: string(sc.ARN), MediaTypes: []string{"AUDIO_VIDEO"}, HLSTargetSegmentDurationSeconds: 2,
			RecordParticipantReplicas: replicas, Thumbnail: &ivsrt.ThumbnailConfiguration{RecordingMode: "DISABLED"}}}); err != nil {
			t.Fatal(err)
		}
	}
	tok := h.token(source, "alice")
	id := awssdk.ToString(tok.ParticipantId)
	pub := h.mustPublish(awssdk.ToString(tok.Token), h264, true, withSender(sendMedia(m)))
	defer pub.halt()
	wait(t, pub.connected, "alice to publish")
	eventually(t, "alice publishing", func() error {
		if !slices.Contains(h.history(source, h.activeSession(source), id), "PUBLISH_STARTED") {
			return errors.New("not yet")
		}
		return nil
	})
	for _, to := range []string{dest, unrecorded} {
		if err := h.replicate(source, to, id, 0, nil); err != nil {
			t.Fatalf("StartParticipantReplication: %v", err)
		}
	}
	deadline := time.Now().Add(testTimeout)
	for log.last().State != recording.Active {
		if time.Now().After(deadline) {
			t.Fatalf("recording states %v, want the replica's ACTIVE", log.states())
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(5 * time.Second)
	if _, err := h.client.StopParticipantReplication(ctx, &ivsrealtime.StopParticipantReplicationInput{SourceStageArn: awssdk.String(source),
		DestinationStageArn: awssdk.String(dest), ParticipantId: awssdk.String(id)}); err != nil {
		t.Fatalf("StopParticipantReplication: %v", err)
	}
	for s := log.last().State; s != recording.Stopped && s != recording.Failed; s = log.last().State {
		if time.Now().After(deadline) {
			t.Fatalf("recording states %v, want it to end with the replication", log.states())
		}
		time.Sleep(20 * time.Millisecond)
	}
	info := log.last()
	log.mu.Lock()
	for _, i := range log.got {
		if i.StageARN != ivsrt.StageARN(dest) {
			t.Errorf("a recording of stage %s: %+v", i.StageARN, i)
		}
	}
	log.mu.Unlock()
	destSession := ivsrt.SessionID(h.activeSession(dest))
	if info.State != recording.Stopped || info.ParticipantID != ivsrt.ParticipantID(id) || info.StageARN != ivsrt.StageARN(dest) {
		t.Fatalf("the replica's recording ended %+v; states %v", info, log.states())
	}
	if !strings.HasPrefix(info.Prefix, ivsrt.StageARN(dest).ID()+"/"+string(info.SessionID)+"/"+id+"/") || (destSession != "" && info.SessionID != destSession) {
		t.Errorf("prefix %q, session %s", info.Prefix, info.SessionID)
	}
	dir := filepath.Join(root, "recordings", filepath.FromSlash(info.Prefix))
	p := testmedia.FFprobe(t, filepath.Join(dir, filepath.FromSlash(recording.MultivariantKey)))
	if d := p.Duration(t); d < 3*time.Second || d > 7*time.Second {
		t.Errorf("the replica's recording plays %v, want about the 5 s it was replicated", d)
	}
	if len(p.Streams) != 2 {
		t.Errorf("streams %+v, want H.264 and Opus", p.Streams)
	}
	part, err := h.db.GetParticipant(ctx, ivsrt.StageARN(dest), info.SessionID, info.ParticipantID)
	if err != nil {
		t.Fatal(err)
	}
	if part.RecordingState != ivsrt.RecordingStopped || part.RecordingPrefix != info.Prefix {
		t.Errorf("the replica's recording in the API: %q %q", part.RecordingState, part.RecordingPrefix)
	}
	// The source stage does not record; the other destination does not
	// record replicas.
	for _, arn := range []string{source, unrecorded} {
		if entries, _ := os.ReadDir(filepath.Join(root, "recordings", ivsrt.StageARN(arn).ID())); len(entries) > 0 {
			t.Errorf("stage %s has recordings: %v", arn, entries)
		}
	}
}
