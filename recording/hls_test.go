package recording

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/ivsrt/ivsrt/objectstore/folder"
	s3store "github.com/ivsrt/ivsrt/objectstore/s3"
)

// needFFmpeg skips the test without ffmpeg, unless CI is set: CI installs it.
func needFFmpeg(t *testing.T) {
	t.Helper()
	for _, bin := range []string{"ffmpeg", "ffprobe"} {
		if _, err := exec.LookPath(bin); err != nil {
			if os.Getenv("CI") != "" {
				t.Fatalf("%s is missing (CI installs it: apt-get install ffmpeg)", bin)
			}
			t.Skipf("%s is missing", bin)
		}
	}
}

// media is a publisher's test media, encoded by ffmpeg as a browser would
// send it: H.264 constrained baseline, a keyframe every 2 s, 30 fps,
// 640x360, and Opus in 20 ms packets.
type media struct {
	frames [][][]byte // access units
	opus   [][]byte
}

func encode(t *testing.T, seconds int) media {
	t.Helper()
	dir := t.TempDir()
	video, audio := filepath.Join(dir, "v.h264"), filepath.Join(dir, "a.ogg")
	run := func(args ...string) {
		t.Helper()
		if out, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput(); err != nil {
			t.Fatalf("ffmpeg %v: %v\n%s", args, err, out)
		}
	}
	d := strconv.Itoa(seconds)
	run("-f", "lavfi", "-i", "testsrc=size=640x360:rate=30", "-t", d, "-c:v", "libx264", "-profile:v", "baseline",
		"-pix_fmt", "yuv420p", "-bf", "0", "-g", "60", "-x264-params", "keyint=60:min-keyint=60:scenecut=0", "-f", "h264", video)
	run("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", d, "-c:a", "libopus", "-b:a", "64k",
		"-frame_duration", "20", "-page_duration", "20000", audio)

	vf, err := os.Open(video)
	if err != nil {
		t.Fatal(err)
	}
	defer vf.Close()
	nals, err := h264reader.NewReader(vf)
	if err != nil {
		t.Fatal(err)
	}
	var m media
	var au [][]byte
	for {
		nal, err := nals.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		au = append(au, nal.Data)
		if typ := h264.NALUType(nal.Data[0] & 0x1f); typ == h264.NALUTypeIDR || typ == h264.NALUTypeNonIDR {
			m.frames = append(m.frames, au) // one slice per picture
			au = nil
		}
	}

	f, err := os.Open(audio)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, _, err := oggreader.NewWith(f)
	if err != nil {
		t.Fatal(err)
	}
	for {
		page, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if bytes.HasPrefix(page, []byte("OpusTags")) {
			continue
		}
		m.opus = append(m.opus, page)
	}
	return m
}

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

func publishTo(t *testing.T, r rtpWriter, m media) { publish(t, r, m, 0, 0, time.Now()) }

// publish feeds the recorder the media as RTP, in the order it would
// arrive in real time, until stop (a duration of the media) if not 0.
func publish(t *testing.T, r rtpWriter, m media, from, stop time.Duration, t0 time.Time) {
	t.Helper()
	type arrival struct {
		at   time.Duration
		kind Kind
		pkt  *rtp.Packet
	}
	var all []arrival
	pay := &codecs.H264Payloader{}
	seq := uint16(0)
	for i, au := range m.frames {
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
	for i, p := range m.opus {
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

type probe struct {
	Format struct {
		Duration string `json:"duration"`
	} `json:"format"`
	Streams []struct {
		CodecName string `json:"codec_name"`
		CodecType string `json:"codec_type"`
		Width     int    `json:"width"`
		Height    int    `json:"height"`
	} `json:"streams"`
}

func ffprobe(t *testing.T, path string) probe {
	t.Helper()
	out, err := exec.Command("ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", path).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			t.Fatalf("ffprobe %s: %v\n%s", path, err, ee.Stderr)
		}
		t.Fatalf("ffprobe %s: %v", path, err)
	}
	var p probe
	if err := json.Unmarshal(out, &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func (p probe) duration(t *testing.T) time.Duration {
	d, err := strconv.ParseFloat(p.Format.Duration, 64)
	if err != nil {
		t.Fatalf("duration %q: %v", p.Format.Duration, err)
	}
	return time.Duration(d * float64(time.Second))
}

// TestRecordHLS: H.264 and Opus sent as RTP become an HLS recording that
// ffprobe reads with the published duration, resolution and codecs, and
// that ffmpeg decodes without an error; while recording, what is uploaded
// already plays.
func TestRecordHLS(t *testing.T) {
	needFFmpeg(t)
	m := encode(t, 10)
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
	if d := ffprobe(t, ended).duration(t); d < 3900*time.Millisecond || d > 4100*time.Millisecond {
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

	p := ffprobe(t, filepath.Join(dir, filepath.FromSlash(MultivariantKey)))
	if d := p.duration(t); d < 9500*time.Millisecond || d > 10500*time.Millisecond {
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
	needFFmpeg(t)
	m := encode(t, 4)
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
			p := ffprobe(t, srv.URL+"/rec/"+prefix+MultivariantKey)
			if d := p.duration(t); d < 3500*time.Millisecond || d > 4500*time.Millisecond {
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
	needFFmpeg(t)
	m := encode(t, 4)
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
