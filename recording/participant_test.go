package recording

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/pion/rtp"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/internal/testmedia"
	"github.com/ivsrt/ivsrt/objectstore/folder"
)

// participantWriter feeds a Participant as the forwarding path does.
type participantWriter struct{ p *Participant }

func (w participantWriter) WriteRTP(_ context.Context, kind Kind, pkt *rtp.Packet, arrival time.Time) error {
	w.p.Push(kind, pkt, arrival)
	return nil
}

type states struct {
	mu  sync.Mutex
	got []State
}

func (s *states) on(st State, _ time.Duration, _ error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.got = append(s.got, st)
}

func (s *states) list() []State {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]State(nil), s.got...)
}

func TestParticipantRecording(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m := testmedia.Encode(t, 4)
	root := t.TempDir()
	store, err := folder.New(root)
	if err != nil {
		t.Fatal(err)
	}
	started := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	prefix := Prefix("arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGhIjKl", "st-1", "part-1", started)
	if prefix != "AbCdEfGhIjKl/st-1/part-1/1796637600000/" {
		t.Errorf("prefix %q", prefix)
	}
	var seen states
	p, err := NewParticipant(ParticipantConfig{Store: store, Bucket: "rec", Prefix: prefix,
		StageARN: "arn:aws:ivs:us-east-1:123456789012:stage/AbCdEfGhIjKl", SessionID: "st-1", ParticipantID: "part-1",
		TargetSegment: 2 * time.Second, Video: true, Audio: true, OnState: seen.on})
	if err != nil {
		t.Fatal(err)
	}
	publishTo(t, participantWriter{p}, m)
	state, err := p.Stop(context.Background())
	if state != Stopped || err != nil {
		t.Fatalf("Stop: %v, %v", state, err)
	}
	if got := seen.list(); len(got) != 4 || got[0] != Starting || got[1] != Active || got[2] != Stopping || got[3] != Stopped {
		t.Errorf("states %v, want STARTING ACTIVE STOPPING STOPPED", got)
	}
	dir := filepath.Join(root, "rec", filepath.FromSlash(prefix))
	var ended metadata
	b, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(EndedKey)))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &ended); err != nil {
		t.Fatal(err)
	}
	r := ended.Media.HLS.Renditions
	if ended.Version != "v1" || ended.RecordingStatus != "RECORDING_ENDED" || ended.ParticipantID != "part-1" ||
		ended.Media.HLS.DurationMS < 3500 || len(r) != 1 || r[0].Width != 640 || r[0].Height != 360 || ended.RecordingEndedAt == "" {
		t.Errorf("recording-ended.json:\n%s", b)
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(StartedKey))); err != nil {
		t.Errorf("recording-started.json: %v", err)
	}
	if d := testmedia.FFprobe(t, filepath.Join(dir, filepath.FromSlash(MultivariantKey))).Duration(t); d < 3500*time.Millisecond {
		t.Errorf("duration %v", d)
	}
}

// failingStore fails every write after the first n, and can hold writes
// until released.
type failingStore struct {
	ivsrt.ObjectStore
	n       atomic.Int64
	after   int64
	blocked chan struct{} // while open, writes wait
}

func (s *failingStore) PutObject(ctx context.Context, bucket, key string, body []byte, contentType string) error {
	if s.blocked != nil {
		<-s.blocked
	}
	if s.n.Add(1) > s.after {
		return errors.New("storage down")
	}
	return s.ObjectStore.PutObject(ctx, bucket, key, body, contentType)
}

// TestParticipantRecordingStorageFails: the store failing mid-recording
// is a FAILED recording, with recording-failed.json if the store takes
// it, and the segments already stored still play.
func TestParticipantRecordingStorageFails(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m := testmedia.Encode(t, 6)
	root := t.TempDir()
	dirStore, err := folder.New(root)
	if err != nil {
		t.Fatal(err)
	}
	// started.json, init, multivariant, segment 1, its playlist: then down.
	store := &failingStore{ObjectStore: dirStore, after: 5}
	var seen states
	p, err := NewParticipant(ParticipantConfig{Store: store, Bucket: "rec", Prefix: "p/", TargetSegment: 2 * time.Second,
		Video: true, Audio: true, OnState: seen.on})
	if err != nil {
		t.Fatal(err)
	}
	publishTo(t, participantWriter{p}, m)
	state, err := p.Stop(context.Background())
	if state != Failed || err == nil {
		t.Fatalf("Stop: %v, %v; want FAILED", state, err)
	}
	if got := seen.list(); got[len(got)-1] != Failed {
		t.Errorf("states %v, want the last FAILED", got)
	}
	live, err := os.ReadFile(filepath.Join(root, "rec", "p", filepath.FromSlash(PlaylistKey)))
	if err != nil {
		t.Fatal(err)
	}
	ended := filepath.Join(root, "rec", "p", filepath.FromSlash(RenditionDir), "ended.m3u8")
	os.WriteFile(ended, append(live, "#EXT-X-ENDLIST\n"...), 0o644)
	if d := testmedia.FFprobe(t, ended).Duration(t); d < 1900*time.Millisecond || d > 2100*time.Millisecond {
		t.Errorf("what was stored before the failure plays %v, want the first 2 s segment", d)
	}
}

// TestParticipantPushNeverBlocks: a store that hangs fills the queue;
// pushing goes on without waiting, dropping, and asking for a keyframe.
func TestParticipantPushNeverBlocks(t *testing.T) {
	store := &failingStore{after: 0, blocked: make(chan struct{})} // every write fails, once released
	var keyframes atomic.Int64
	p, err := NewParticipant(ParticipantConfig{Store: store, Bucket: "rec", Prefix: "p/", Video: true, Audio: true,
		RequestKeyframe: func() { keyframes.Add(1) }})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		for i := range 3 * queueLen {
			p.Push(Audio, &rtp.Packet{Header: rtp.Header{SequenceNumber: uint16(i), Timestamp: uint32(i * 960)}, Payload: []byte{1}}, time.Now())
		}
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Push blocked on a store that hangs")
	}
	if keyframes.Load() == 0 || p.dropped.Load() < queueLen {
		t.Errorf("dropped %d, keyframe requests %d: want drops and a request", p.dropped.Load(), keyframes.Load())
	}
	close(store.blocked) // the store answers (with errors: no folder behind it)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if state, _ := p.Stop(ctx); state != Failed {
		t.Errorf("state %v after the store failed, want FAILED", state)
	}
}

// TestFailInterrupted: a recording the server left in progress (its
// playlist an EVENT one naming the segments uploaded) is closed: the
// playlist becomes VOD with its end, and recording-failed.json carries the
// start, the duration and the resolution of what was kept.
func TestFailInterrupted(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	ctx := context.Background()
	m := testmedia.Encode(t, 5)
	root := t.TempDir()
	store, err := folder.New(root)
	if err != nil {
		t.Fatal(err)
	}
	prefix := "stageid/sessionid/participantid/1700000000/"
	w, err := NewHLSWriter(HLSConfig{Store: store, Bucket: "rec", Prefix: prefix, TargetSegment: 2 * time.Second, Video: true, Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	started := `{"version":"v1","recording_started_at":"2026-12-07T06:00:00Z","recording_status":"RECORDING_STARTED"}`
	if err := store.PutObject(ctx, "rec", prefix+StartedKey, []byte(started), "application/json"); err != nil {
		t.Fatal(err)
	}
	publish(t, NewRTPRecorder(w), m, 0, 0, time.Now()) // never closed, as if killed
	r := Interrupted{Bucket: "rec", Prefix: prefix, StageARN: "arn:aws:ivs:us-east-1:123456789012:stage/stageid", SessionID: "sessionid", ParticipantID: "participantid"}
	if err := FailInterrupted(ctx, store, r, time.Date(2026, 12, 7, 6, 1, 0, 0, time.UTC)); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "rec", filepath.FromSlash(prefix))
	pl, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(PlaylistKey)))
	if !strings.HasSuffix(string(pl), "#EXT-X-ENDLIST\n") || !strings.Contains(string(pl), "#EXT-X-PLAYLIST-TYPE:VOD") || strings.Count(string(pl), ".mp4\n") != 2 {
		t.Errorf("closed playlist:\n%s", pl)
	}
	var meta metadata
	b, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(FailedKey)))
	if err := json.Unmarshal(b, &meta); err != nil {
		t.Fatal(err)
	}
	r0 := meta.Media.HLS.Renditions[0]
	if meta.RecordingStatus != "RECORDING_ENDED_WITH_FAILURE" || meta.RecordingStartedAt != "2026-12-07T06:00:00Z" || meta.RecordingEndedAt != "2026-12-07T06:01:00Z" ||
		meta.Media.HLS.DurationMS < 3900 || meta.Media.HLS.DurationMS > 4100 || r0.Width != 640 || r0.Height != 360 {
		t.Errorf("recording-failed.json:\n%s", b)
	}
	if d := testmedia.FFprobe(t, filepath.Join(dir, filepath.FromSlash(MultivariantKey))).Duration(t); d < 3900*time.Millisecond || d > 4100*time.Millisecond {
		t.Errorf("the closed recording plays %v, want the 4 s of its two segments", d)
	}
	// Closing again changes nothing.
	if err := FailInterrupted(ctx, store, r, time.Now()); err != nil {
		t.Fatal(err)
	}
	if again, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(PlaylistKey))); string(again) != string(pl) {
		t.Errorf("closed twice:\n%s", again)
	}
}
