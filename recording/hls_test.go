package recording

import (
	"context"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"

	"github.com/ivsrt/ivsrt/internal/testmedia"
	"github.com/ivsrt/ivsrt/objectstore/folder"
	s3store "github.com/ivsrt/ivsrt/objectstore/s3"
)

type rtpWriter interface {
	WriteRTP(ctx context.Context, kind Kind, pkt *rtp.Packet, arrival time.Time) error
}

// lossyRecorder loses the second packet of the picture of RTP timestamp
// at.
type lossyRecorder struct {
	*RTPRecorder
	at         uint32
	seen, lost int
}

func (l *lossyRecorder) WriteRTP(ctx context.Context, kind Kind, pkt *rtp.Packet, arrival time.Time) error {
	if kind == Video && pkt.Timestamp == l.at {
		if l.seen++; l.seen == 2 {
			l.lost++
			return nil
		}
	}
	return l.RTPRecorder.WriteRTP(ctx, kind, pkt, arrival)
}

func publishTo(t *testing.T, r rtpWriter, m testmedia.Media) { publish(t, r, m, 0, 0, time.Now()) }

// publish feeds the recorder the media as RTP, in the order it would
// arrive in real time, until stop (a duration of the media) if not 0.
func publish(t testing.TB, r rtpWriter, m testmedia.Media, from, stop time.Duration, t0 time.Time) {
	t.Helper()
	type arrival struct {
		at   time.Duration
		kind Kind
		pkt  *rtp.Packet
	}
	var all []arrival
	pay := &codecs.H264Payloader{}
	seq := uint16(0)
	for i, au := range m.Frames {
		at := time.Duration(i) * time.Second / 30
		var pkts [][]byte
		for _, nalu := range au {
			pkts = append(pkts, pay.Payload(1200, append([]byte{0, 0, 0, 1}, nalu...))...)
		}
		for j, p := range pkts {
			seq++
			all = append(all, arrival{at, Video, &rtp.Packet{Header: rtp.Header{Version: 2, PayloadType: 102, SequenceNumber: seq,
				Timestamp: 1000 + uint32(i*3000), Marker: j == len(pkts)-1, SSRC: 1}, Payload: p}})
		}
	}
	for i, p := range m.Opus {
		all = append(all, arrival{time.Duration(i) * 20 * time.Millisecond, Audio, &rtp.Packet{Header: rtp.Header{Version: 2,
			PayloadType: 111, SequenceNumber: uint16(i), Timestamp: 77 + uint32(i*960), SSRC: 2}, Payload: p}})
	}
	sort.SliceStable(all, func(i, j int) bool { return all[i].at < all[j].at })
	for _, a := range all {
		if a.at < from || stop != 0 && a.at >= stop {
			continue
		}
		if err := r.WriteRTP(context.Background(), a.kind, a.pkt, t0.Add(a.at)); err != nil {
			t.Fatalf("WriteRTP at %v: %v", a.at, err)
		}
	}
}

// TestRecordHLS: H.264 and Opus sent as RTP become an HLS recording that
// ffprobe reads with the published duration, resolution and codecs, and
// that ffmpeg decodes without an error; while recording, what is uploaded
// already plays.
func TestRecordHLS(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m := testmedia.Encode(t, 10)
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
	r := NewRTPRecorder(w)
	t0 := time.Now()
	publish(t, r, m, 0, 5*time.Second, t0)

	// Mid-recording, as after a crash: the playlist names only complete
	// segments, which play. (ffprobe gives no duration for a playlist that
	// may grow: probe a copy that says it ended.)
	dir := filepath.Join(root, "rec", filepath.FromSlash(prefix))
	live, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(PlaylistKey)))
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(live), "#EXT-X-ENDLIST") || !strings.Contains(string(live), "#EXT-X-PLAYLIST-TYPE:EVENT") {
		t.Errorf("playlist while recording:\n%s", live)
	}
	ended := filepath.Join(dir, filepath.FromSlash(RenditionDir), "ended.m3u8")
	if err := os.WriteFile(ended, append(live, "#EXT-X-ENDLIST\n"...), 0o644); err != nil {
		t.Fatal(err)
	}
	if d := testmedia.FFprobe(t, ended).Duration(t); d < 3900*time.Millisecond || d > 4100*time.Millisecond {
		t.Errorf("duration of what was uploaded mid-recording: %v, want the 4 s of two segments", d)
	}
	os.Remove(ended)

	publish(t, r, m, 5*time.Second, 0, t0)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if r.Dropped != 0 {
		t.Errorf("%d packets dropped", r.Dropped)
	}

	p := testmedia.FFprobe(t, filepath.Join(dir, filepath.FromSlash(MultivariantKey)))
	if d := p.Duration(t); d < 9500*time.Millisecond || d > 10500*time.Millisecond {
		t.Errorf("duration %v, want 10 s", d)
	}
	var kinds []string
	for _, s := range p.Streams {
		kinds = append(kinds, s.CodecType+":"+s.CodecName)
		if s.CodecType == "video" && (s.Width != 640 || s.Height != 360) {
			t.Errorf("video %dx%d, want 640x360", s.Width, s.Height)
		}
	}
	sort.Strings(kinds)
	if strings.Join(kinds, " ") != "audio:opus video:h264" {
		t.Errorf("streams %v, want H.264 video and Opus audio", kinds)
	}
	if out, err := exec.Command("ffmpeg", "-v", "error", "-i", filepath.Join(dir, filepath.FromSlash(MultivariantKey)), "-f", "null", "-").CombinedOutput(); err != nil || len(out) > 0 {
		t.Errorf("ffmpeg decoding the recording: %v\n%s", err, out)
	}

	// The layout: five segments of 2 s, the init segment, the playlists.
	var names []string
	filepath.Walk(dir, func(path string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() {
			rel, _ := filepath.Rel(dir, path)
			names = append(names, filepath.ToSlash(rel))
		}
		return nil
	})
	sort.Strings(names)
	want := []string{"media/hls/high/1.mp4", "media/hls/high/2.mp4", "media/hls/high/3.mp4", "media/hls/high/4.mp4", "media/hls/high/5.mp4",
		"media/hls/high/init.mp4", "media/hls/high/playlist.m3u8", "media/hls/multivariant.m3u8"}
	if strings.Join(names, " ") != strings.Join(want, " ") {
		t.Errorf("objects %v, want %v", names, want)
	}
	pl, _ := os.ReadFile(filepath.Join(dir, filepath.FromSlash(PlaylistKey)))
	if !strings.Contains(string(pl), "#EXT-X-ENDLIST") || !strings.Contains(string(pl), "#EXT-X-PLAYLIST-TYPE:VOD") {
		t.Errorf("final playlist:\n%s", pl)
	}
}

// TestRecordHLSToS3: the same recording through an S3 server (gofakes3 in
// the process), audio only as well as audio and video; ffprobe reads it
// from the server.
func TestRecordHLSToS3(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m := testmedia.Encode(t, 4)
	backend := s3mem.New()
	if err := backend.CreateBucket("rec"); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	defer srv.Close()
	store, err := s3store.New(context.Background(), s3store.Config{EndpointURL: srv.URL, AccessKeyID: "AKIDTEST", SecretAccessKey: "secret"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name         string
		video, audio bool
		want         string
	}{
		{"AUDIO_VIDEO", true, true, "audio:opus video:h264"},
		{"AUDIO_ONLY", false, true, "audio:opus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			prefix := "stage/session/" + tc.name + "/1700000000/"
			w, err := NewHLSWriter(HLSConfig{Store: store, Bucket: "rec", Prefix: prefix, TargetSegment: 2 * time.Second, Video: tc.video, Audio: tc.audio})
			if err != nil {
				t.Fatal(err)
			}
			r := NewRTPRecorder(w)
			publish(t, r, m, 0, 0, time.Now())
			if err := r.Close(context.Background()); err != nil {
				t.Fatal(err)
			}
			p := testmedia.FFprobe(t, srv.URL+"/rec/"+prefix+MultivariantKey)
			if d := p.Duration(t); d < 3500*time.Millisecond || d > 4500*time.Millisecond {
				t.Errorf("duration %v, want 4 s", d)
			}
			var kinds []string
			for _, s := range p.Streams {
				kinds = append(kinds, s.CodecType+":"+s.CodecName)
			}
			sort.Strings(kinds)
			if got := strings.Join(kinds, " "); got != tc.want {
				t.Errorf("streams %s, want %s", got, tc.want)
			}
		})
	}
}

// TestRecordHLSLoss: a packet lost in the middle of a picture (here the
// keyframe at 2 s) costs that picture, not the recording: it goes on, in
// one segment until the next keyframe.
func TestRecordHLSLoss(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m := testmedia.Encode(t, 4)
	store, err := folder.New(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewHLSWriter(HLSConfig{Store: store, Bucket: "rec", Prefix: "p/", TargetSegment: 2 * time.Second, Video: true, Audio: true})
	if err != nil {
		t.Fatal(err)
	}
	lossy := &lossyRecorder{RTPRecorder: NewRTPRecorder(w), at: 1000 + 60*3000} // the keyframe at 2 s
	publishTo(t, lossy, m)
	if err := lossy.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	if lossy.Dropped == 0 || lossy.lost == 0 {
		t.Errorf("lost %d packets, %d dropped by the depacketizer: want some of each", lossy.lost, lossy.Dropped)
	}
	if d := w.Duration(); d < 3500*time.Millisecond {
		t.Errorf("recorded %v of 4 s", d)
	}
}

// TestRecordThumbnails: with thumbnails every 2 s, the recording holds a
// JPEG for each keyframe (one every 2 s), in sequence and as the latest,
// each of the video's size.
func TestRecordThumbnails(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	m := testmedia.Encode(t, 6)
	root := t.TempDir()
	store, err := folder.New(root)
	if err != nil {
		t.Fatal(err)
	}
	w, err := NewHLSWriter(HLSConfig{Store: store, Bucket: "rec", Prefix: "p/", TargetSegment: 2 * time.Second, Video: true, Audio: true,
		Thumbnails: &ThumbnailConfig{Interval: 2 * time.Second, Sequential: true, Latest: true}})
	if err != nil {
		t.Fatal(err)
	}
	r := NewRTPRecorder(w)
	publishTo(t, r, m)
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(root, "rec", "p")
	thumbs, _ := filepath.Glob(filepath.Join(dir, filepath.FromSlash(ThumbnailDir), "*.jpg"))
	// Keyframes at 0, 2 and 4 s; one may be skipped while the one before
	// is still being decoded.
	if len(thumbs) < 2 || len(thumbs) > 3 {
		t.Errorf("thumbnails %v, want one per keyframe", thumbs)
	}
	for _, f := range append(thumbs, filepath.Join(dir, filepath.FromSlash(LatestKey))) {
		p := testmedia.FFprobe(t, f)
		if len(p.Streams) != 1 || p.Streams[0].CodecName != "mjpeg" || p.Streams[0].Width != 640 || p.Streams[0].Height != 360 {
			t.Errorf("%s: %+v, want a 640x360 JPEG", f, p.Streams)
		}
	}
}

// BenchmarkRecord measures the CPU of recording one publisher: each
// operation records 10 s of 640x360 H.264 and Opus, sent as RTP, to a
// folder; ms/media-s is the CPU per second of media recorded.
func BenchmarkRecord(b *testing.B) {
	testmedia.NeedFFmpeg(b)
	m := testmedia.Encode(b, 10)
	root := b.TempDir()
	store, err := folder.New(root)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		w, err := NewHLSWriter(HLSConfig{Store: store, Bucket: "rec", Prefix: "p" + strconv.Itoa(i) + "/", Video: true, Audio: true})
		if err != nil {
			b.Fatal(err)
		}
		r := NewRTPRecorder(w)
		publish(b, r, m, 0, 0, time.Now())
		if err := r.Close(context.Background()); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Milliseconds())/float64(b.N)/10, "ms/media-s")
}

// TestRecordBreak: a publisher that goes away and comes back (Break)
// continues the same recording: the playlist marks the discontinuity,
// the time away is not in the recording, and a publisher back with
// another resolution gets an init segment of its own, as does one whose
// encoder changes its parameter sets mid-stream. ffmpeg decodes the whole
// without an error.
func TestRecordBreak(t *testing.T) {
	testmedia.NeedFFmpeg(t)
	first, smaller := testmedia.Encode(t, 4), testmedia.EncodeSize(t, 4, 320, 180)
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
	r := NewRTPRecorder(w)
	t0 := time.Now()
	publish(t, r, first, 0, 0, t0)
	if err := r.Break(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Back ten seconds later, at the same resolution, then (another
	// break) at a smaller one.
	publish(t, r, first, 0, 0, t0.Add(14*time.Second))
	if err := r.Break(context.Background()); err != nil {
		t.Fatal(err)
	}
	publish(t, r, smaller, 0, 0, t0.Add(30*time.Second))
	if err := r.Close(context.Background()); err != nil {
		t.Fatal(err)
	}

	dir := filepath.Join(root, "rec", filepath.FromSlash(prefix))
	pl, err := os.ReadFile(filepath.Join(dir, filepath.FromSlash(PlaylistKey)))
	if err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(string(pl), "#EXT-X-DISCONTINUITY\n"); n != 2 {
		t.Errorf("%d discontinuities, want 2:\n%s", n, pl)
	}
	if strings.Count(string(pl), "#EXT-X-MAP:") != 2 || !strings.Contains(string(pl), `#EXT-X-MAP:URI="init-2.mp4"`) {
		t.Errorf("want init.mp4, then init-2.mp4 for the smaller video:\n%s", pl)
	}
	if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(RenditionDir), "init-3.mp4")); err == nil {
		t.Error("an init segment was made where the parameter sets did not change")
	}
	p := testmedia.FFprobe(t, filepath.Join(dir, filepath.FromSlash(MultivariantKey)))
	if d := p.Duration(t); d < 11500*time.Millisecond || d > 12500*time.Millisecond {
		t.Errorf("duration %v, want the 12 s published, without the time away", d)
	}
	if d := w.Duration(); d < 11500*time.Millisecond || d > 12500*time.Millisecond {
		t.Errorf("writer's duration %v, want 12 s", d)
	}
	out, err := exec.Command("ffmpeg", "-v", "error", "-i", filepath.Join(dir, filepath.FromSlash(MultivariantKey)), "-f", "null", "-").CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("ffmpeg decoding the recording: %v\n%s", err, out)
	}
	// The last part decodes at its own size.
	sizes, err := exec.Command("ffprobe", "-v", "error", "-select_streams", "v", "-show_entries", "frame=width,height",
		"-of", "csv=p=0", filepath.Join(dir, filepath.FromSlash(MultivariantKey))).Output()
	if err != nil {
		t.Fatal(err)
	}
	count := map[string]int{}
	for _, l := range strings.Fields(string(sizes)) {
		count[l]++
	}
	if count["640,360"] < 230 || count["320,180"] < 110 {
		t.Errorf("decoded frames by size: %v, want 240 at 640x360 and 120 at 320x180", count)
	}
}
