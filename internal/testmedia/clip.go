package testmedia

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/pion/rtp"
	"github.com/pion/rtp/codecs"
	"github.com/pion/webrtc/v4/pkg/media/h264reader"
	"github.com/pion/webrtc/v4/pkg/media/oggreader"
)

// Clip is media to encode outside a test (a benchmark's publishers): as
// Encode makes it, H.264 constrained baseline with a keyframe every 2 s
// at 30 fps and Opus in 20 ms packets, of a given size and bit rate.
type Clip struct {
	Seconds       int
	Width, Height int
	// VideoKbps is the video's bit rate. The picture is a test pattern
	// with moving noise, so that the encoder spends the bit rate as it
	// does on a camera's picture.
	VideoKbps int
}

// EncodeClip encodes c with ffmpeg, in dir, and reads it back.
func EncodeClip(dir string, c Clip) (Media, error) {
	if c.Seconds < 1 || c.Width < 16 || c.Height < 16 || c.VideoKbps < 1 {
		return Media{}, fmt.Errorf("testmedia: clip %+v: want a second or more, 16x16 or larger, a bit rate", c)
	}
	video, audio := filepath.Join(dir, "clip.h264"), filepath.Join(dir, "clip.ogg")
	run := func(args ...string) error {
		out, err := exec.Command("ffmpeg", append([]string{"-hide_banner", "-loglevel", "error", "-y"}, args...)...).CombinedOutput()
		if err != nil {
			return fmt.Errorf("ffmpeg %v: %w: %s", args, err, bytes.TrimSpace(out))
		}
		return nil
	}
	d, kbps := strconv.Itoa(c.Seconds), strconv.Itoa(c.VideoKbps)+"k"
	if err := run("-f", "lavfi", "-i", fmt.Sprintf("testsrc2=size=%dx%d:rate=30", c.Width, c.Height), "-t", d,
		"-vf", "noise=alls=8:allf=t", "-c:v", "libx264", "-profile:v", "baseline", "-preset", "veryfast",
		"-pix_fmt", "yuv420p", "-bf", "0", "-g", "60", "-x264-params", "keyint=60:min-keyint=60:scenecut=0",
		"-b:v", kbps, "-maxrate", kbps, "-bufsize", kbps, "-f", "h264", video); err != nil {
		return Media{}, err
	}
	if err := run("-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-t", d, "-c:a", "libopus", "-b:a", "64k",
		"-frame_duration", "20", "-page_duration", "20000", audio); err != nil {
		return Media{}, err
	}
	return readMedia(video, audio)
}

// readMedia reads an H.264 byte stream (one slice per picture) and an Ogg
// Opus file.
func readMedia(video, audio string) (Media, error) {
	var m Media
	vf, err := os.Open(video)
	if err != nil {
		return m, err
	}
	defer vf.Close()
	nals, err := h264reader.NewReader(vf)
	if err != nil {
		return m, err
	}
	var au [][]byte
	for {
		nal, err := nals.NextNAL()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return m, err
		}
		au = append(au, nal.Data)
		if typ := h264.NALUType(nal.Data[0] & 0x1f); typ == h264.NALUTypeIDR || typ == h264.NALUTypeNonIDR {
			m.Frames = append(m.Frames, au)
			au = nil
		}
	}
	af, err := os.Open(audio)
	if err != nil {
		return m, err
	}
	defer af.Close()
	r, _, err := oggreader.NewWith(af)
	if err != nil {
		return m, err
	}
	for {
		page, _, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			return m, err
		}
		if bytes.HasPrefix(page, []byte("OpusTags")) {
			continue
		}
		m.Opus = append(m.Opus, page)
	}
	if len(m.Frames) == 0 {
		return m, errors.New("testmedia: no video frames")
	}
	return m, nil
}

// Duration is the video's duration: 30 frames a second.
func (m Media) Duration() time.Duration {
	return time.Duration(len(m.Frames)) * time.Second / 30
}

// RTPLoop sends media over and over as one endless RTP stream, as a
// browser would send it: H.264 cut into packets of at most mtu bytes
// (RFC 6184, packetization mode 1: single NAL units, STAP-A for the
// parameter sets, FU-A for larger ones), a frame each 1/30 s, and Opus
// one packet each 20 ms. Sequence numbers and timestamps go on from one
// loop to the next.
type RTPLoop struct {
	frames   [][][]byte // each frame's payloads
	first    []int      // index of each frame's first payload in one loop's
	key      []bool     // frames with an IDR slice
	opus     [][]byte
	duration time.Duration
	fi       int   // the next frame of the media
	slot     int64 // video frames sent: the next one's place in time
	au       int64 // audio packets sent
	lastKey  bool  // the last frame sent was a keyframe
	keyNext  bool
	vseq     uint16
	aseq     uint16
}

// Unit is what is due at At from the stream's start: the packets of a
// video frame, or one audio packet.
type Unit struct {
	At      time.Duration
	Video   bool
	Packets []*rtp.Packet
	// Frame is the video frame's index in the media, and Index that of
	// its first packet in VideoPayloads.
	Frame, Index int
}

// NewRTPLoop returns the RTP stream of m, which must have video.
func NewRTPLoop(m Media, mtu int) *RTPLoop {
	l := &RTPLoop{duration: m.Duration(), opus: m.Opus}
	pay := &codecs.H264Payloader{}
	n := 0
	for _, au := range m.Frames {
		var pkts [][]byte
		key := false
		for _, nalu := range au {
			pkts = append(pkts, pay.Payload(uint16(mtu), append([]byte{0, 0, 0, 1}, nalu...))...)
			key = key || h264.NALUType(nalu[0]&0x1f) == h264.NALUTypeIDR
		}
		l.frames = append(l.frames, pkts)
		l.first = append(l.first, n)
		l.key = append(l.key, key)
		n += len(pkts)
	}
	return l
}

// VideoPayloads returns the video payloads of one loop, in the order they
// are sent. They are shared with the packets Next returns: not to be
// changed.
func (l *RTPLoop) VideoPayloads() [][]byte {
	var out [][]byte
	for _, f := range l.frames {
		out = append(out, f...)
	}
	return out
}

// Duration is the time one loop lasts.
func (l *RTPLoop) Duration() time.Duration { return l.duration }

// KeyframeNext makes the next video frame the media's next keyframe, as
// an encoder answers a keyframe request (a PLI): the frames between are
// skipped, and the stream's timing goes on. Right after a keyframe it does
// nothing, as an encoder that has just sent one.
func (l *RTPLoop) KeyframeNext() {
	if !l.lastKey {
		l.keyNext = true
	}
}

// Next returns the next unit to send, in the order they are due.
func (l *RTPLoop) Next() Unit {
	vAt := time.Duration(l.slot) * time.Second / 30
	aAt := time.Duration(l.au) * 20 * time.Millisecond
	if len(l.opus) == 0 || vAt <= aAt {
		if l.keyNext {
			l.keyNext = false
			for range l.frames {
				if l.key[l.fi] {
					break
				}
				l.fi = (l.fi + 1) % len(l.frames)
			}
		}
		f := l.fi
		l.fi = (l.fi + 1) % len(l.frames)
		l.lastKey = l.key[f]
		ts := uint32(l.slot * 3000) // 90 kHz, 30 fps
		l.slot++
		pkts := make([]*rtp.Packet, len(l.frames[f]))
		for j, b := range l.frames[f] {
			pkts[j] = &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: l.vseq, Timestamp: ts,
				Marker: j == len(l.frames[f])-1}, Payload: b}
			l.vseq++
		}
		return Unit{At: vAt, Video: true, Packets: pkts, Frame: f, Index: l.first[f]}
	}
	p := &rtp.Packet{Header: rtp.Header{Version: 2, SequenceNumber: l.aseq, Timestamp: uint32(l.au * 960)}, // 48 kHz
		Payload: l.opus[l.au%int64(len(l.opus))]}
	l.aseq++
	l.au++
	return Unit{At: aAt, Packets: []*rtp.Packet{p}}
}
