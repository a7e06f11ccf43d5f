package rtmpingest

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net/url"
	"reflect"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bluenviron/gortmplib/pkg/amf0"
	"github.com/bluenviron/gortmplib/pkg/bytecounter"
	"github.com/bluenviron/gortmplib/pkg/message"
	"github.com/bluenviron/gortmplib/pkg/rawmessage"

	"github.com/ivsrt/ivsrt/transcode"
)

func TestStreamKey(t *testing.T) {
	for _, tc := range []struct {
		url, want string
	}{
		{"rtmp://host/app/sk_us-west-2_abc", "sk_us-west-2_abc"},
		{"rtmps://host:443/app/sk_1?foo=bar", "sk_1"},
		{"rtmp://host/app/inst/sk_1", "sk_1"},
		{"rtmp://host/app/sk_1/", "sk_1"},
		{"rtmp://host/app", ""},
		{"rtmp://host/app/", ""},
		{"rtmp://host", ""},
	} {
		u, err := url.Parse(tc.url)
		if err != nil {
			t.Fatal(err)
		}
		if got := streamKey(u); got != tc.want {
			t.Errorf("streamKey(%s): got %q, want %q", tc.url, got, tc.want)
		}
	}
}

func TestSplitAVCC(t *testing.T) {
	for _, tc := range []struct {
		name       string
		buf        []byte
		lengthSize int
		want       [][]byte
		err        bool
	}{
		{"4 bytes", []byte{0, 0, 0, 2, 0x65, 1, 0, 0, 0, 1, 0x41}, 4, [][]byte{{0x65, 1}, {0x41}}, false},
		{"2 bytes", []byte{0, 2, 0x65, 1, 0, 1, 0x41}, 2, [][]byte{{0x65, 1}, {0x41}}, false},
		{"1 byte", []byte{2, 0x65, 1}, 1, [][]byte{{0x65, 1}}, false},
		{"empty NAL unit left out", []byte{0, 0, 0, 0, 0, 0, 0, 1, 0x41}, 4, [][]byte{{0x41}}, false},
		{"nothing", nil, 4, nil, false},
		{"too long", []byte{0, 0, 0, 9, 0x65}, 4, nil, true},
		{"short length", []byte{0, 0}, 4, nil, true},
		{"bad length size", []byte{1, 0x65}, 0, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := splitAVCC(tc.buf, tc.lengthSize)
			if (err != nil) != tc.err {
				t.Fatalf("error: got %v, want error %v", err, tc.err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %x, want %x", got, tc.want)
			}
		})
	}
}

func TestBitrateMeter(t *testing.T) {
	m := bitrateMeter{window: 5 * time.Second}
	// 1 Mbps: 125 kB a second, in 25 frames of 5 kB.
	var bps int64
	var ok bool
	for i := range 25 * 10 {
		bps, ok = m.add(time.Duration(i)*40*time.Millisecond, 5000)
		if i < 25*5 && ok {
			t.Fatalf("measured at %v, before the window was full", time.Duration(i)*40*time.Millisecond)
		}
	}
	if !ok || bps < 990_000 || bps > 1_010_000 {
		t.Fatalf("got %d bps (%v), want 1 Mbps", bps, ok)
	}
	// A clock that goes back starts the measure anew.
	if _, ok := m.add(0, 5000); ok {
		t.Fatal("measured right after the clock went back")
	}
}

func TestMetaCodecs(t *testing.T) {
	for _, tc := range []struct {
		video, audio any
		want         string // "" for accepted
	}{
		{7.0, 10.0, ""},
		{float64(message.FourCCAVC), float64(message.FourCCMP4A), ""},
		{"avc1", "mp4a", ""},
		{2.0, 10.0, CodeInvalidVideoCodec},
		{12.0, 10.0, CodeInvalidVideoCodec},
		{"hvc1", 10.0, CodeInvalidVideoCodec},
		{float64(message.FourCCAV1), 10.0, CodeInvalidVideoCodec},
		{7.0, 2.0, CodeInvalidAudioCodec},
		{7.0, float64(message.FourCCOpus), CodeInvalidAudioCodec},
		{7.0, "Opus", CodeInvalidAudioCodec},
		{true, nil, ""}, // not something to go by
	} {
		p := &publisher{}
		err := p.metadata(amf0.Data{"@setDataFrame", "onMetaData", amf0.ECMAArray{
			{Key: "videocodecid", Value: tc.video}, {Key: "audiocodecid", Value: tc.audio},
		}})
		var r *Refusal
		switch {
		case tc.want == "" && err != nil:
			t.Errorf("%v, %v: got %v, want nil", tc.video, tc.audio, err)
		case tc.want != "" && (!errors.As(err, &r) || r.Code != tc.want):
			t.Errorf("%v, %v: got %v, want %s", tc.video, tc.audio, err, tc.want)
		}
	}
}

func TestParseRefusal(t *testing.T) {
	for _, tc := range []struct {
		err  string
		want string
	}{
		{"unsupported video codec: 2", CodeInvalidVideoCodec},
		{"unsupported audio codec: 6", CodeInvalidAudioCodec},
		{"unable to parse MPEG4 audio config: unsupported object type: 1", CodeInvalidAudioCodec},
		{"unsupported multitrack type: 1", CodeInvalidVideoCodec},
		{"unsupported fourCC: 1987470129", CodeInvalidVideoCodec}, // vvc1
		{"unsupported fourCC: 1700998451", CodeInvalidAudioCodec}, // ec-3
		{"unable to parse H265 config: EOF", CodeInvalidVideoCodec},
		{"invalid message type: 15", CodeInvalidInput},
	} {
		if got := parseRefusal(errors.New(tc.err)); got.Code != tc.want {
			t.Errorf("%s: got %s, want %s", tc.err, got, tc.want)
		}
	}
}

// A real SPS (64x48, constrained baseline), PPS and the start of an IDR
// slice, from x264.
var (
	testSPS = mustHex("6742c00ada11ec0440000003004000000f03c489a8")
	testPPS = mustHex("68ce0fc8")
	testIDR = mustHex("6588840b7c4222a00c0843f0e00011ee83e880069b9271b23bec903613218badf2fffe025e971eaf")
)

func mustHex(s string) []byte {
	b, err := hex.DecodeString(s)
	if err != nil {
		panic(err)
	}
	return b
}

// fuzzRecord is one RTMP message of a fuzz input: a type, a timestamp
// step in ms and a body.
type fuzzRecord struct {
	typ  byte
	step byte
	body []byte
}

var fuzzTypes = []message.Type{message.TypeVideo, message.TypeAudio, message.TypeDataAMF0, message.TypeCommandAMF0}

func encodeRecords(recs ...fuzzRecord) []byte {
	var b []byte
	for _, r := range recs {
		b = append(b, r.typ, r.step)
		b = binary.BigEndian.AppendUint16(b, uint16(len(r.body)))
		b = append(b, r.body...)
	}
	return b
}

// decodeRecords turns fuzz input into RTMP chunks, as gortmplib writes
// them.
func decodeRecords(data []byte) []byte {
	var out bytes.Buffer
	w := rawmessage.NewWriter(&out, bytecounter.NewWriter(io.Discard), false)
	var ts time.Duration
	for len(data) >= 4 {
		typ, step, n := data[0], data[1], int(binary.BigEndian.Uint16(data[2:]))
		data = data[4:]
		n = min(n, len(data))
		body := data[:n]
		data = data[n:]
		ts += time.Duration(step) * time.Millisecond
		mt := fuzzTypes[int(typ)%len(fuzzTypes)]
		w.Write(&rawmessage.Message{
			ChunkStreamID: 4 + byte(mt)%3, Timestamp: ts, Type: uint8(mt), MessageStreamID: 1, Body: body,
		})
	}
	return out.Bytes()
}

func avcConfigBody() []byte {
	b := []byte{0x17, 0, 0, 0, 0, 1, testSPS[1], testSPS[2], testSPS[3], 0xff, 0xe1}
	b = binary.BigEndian.AppendUint16(b, uint16(len(testSPS)))
	b = append(b, testSPS...)
	b = append(b, 1)
	b = binary.BigEndian.AppendUint16(b, uint16(len(testPPS)))
	return append(b, testPPS...)
}

func avcFrameBody(cts byte, nalus ...[]byte) []byte {
	b := []byte{0x17, 1, 0, 0, cts}
	for _, n := range nalus {
		b = binary.BigEndian.AppendUint32(b, uint32(len(n)))
		b = append(b, n...)
	}
	return b
}

// multitrackConfig is the H.264 sequence start of video track id of an
// enhanced RTMP multitrack stream (one track per message).
func multitrackConfig(id byte) []byte {
	return append([]byte{0x80 | 6, 0x00, 'a', 'v', 'c', '1', id}, avcConfigBody()[5:]...)
}

// multitrackFrame is a keyframe of video track id, without composition
// time (FramesX).
func multitrackFrame(id byte, nalus ...[]byte) []byte {
	return append([]byte{0x80 | 1<<4 | 6, 0x03, 'a', 'v', 'c', '1', id}, avcFrameBody(0, nalus...)[5:]...)
}

// multitrackCodedFrame is a keyframe of video track id shown cts ms after
// it is decoded.
func multitrackCodedFrame(id, cts byte, nalus ...[]byte) []byte {
	return append([]byte{0x80 | 1<<4 | 6, 0x01, 'a', 'v', 'c', '1', id, 0, 0, cts}, avcFrameBody(0, nalus...)[5:]...)
}

func amf(data ...any) []byte {
	b, err := amf0.Data(data).Marshal()
	if err != nil {
		panic(err)
	}
	return b
}

// nopStream takes everything.
type nopStream struct{}

func (nopStream) Begin(StreamInfo) error                                { return nil }
func (nopStream) WriteVideo(uint8, time.Duration, [][]byte, bool) error { return nil }
func (nopStream) WriteAudio(time.Duration, []byte) error                { return nil }
func (nopStream) End(error)                                             {}

// nopAudio stands for ffmpeg in fuzzing: it takes AAC and makes nothing.
type nopAudio struct{ closed chan struct{} }

func (a nopAudio) Write(time.Duration, []byte) error { return nil }
func (a nopAudio) ReadPacket() (transcode.Packet, error) {
	<-a.closed
	return transcode.Packet{}, io.EOF
}
func (a nopAudio) Close() error { close(a.closed); return nil }

// FuzzPublisher feeds RTMP messages made of fuzz input to the rules: they
// must refuse or take them, never panic.
func FuzzPublisher(f *testing.F) {
	video, audio, data, command := byte(0), byte(1), byte(2), byte(3)
	f.Add(encodeRecords(
		fuzzRecord{data, 0, amf("@setDataFrame", "onMetaData", amf0.ECMAArray{{Key: "videocodecid", Value: 7.0}, {Key: "audiocodecid", Value: 10.0}})},
		fuzzRecord{video, 0, avcConfigBody()},
		fuzzRecord{audio, 0, []byte{0xaf, 0, 0x12, 0x10}},
		fuzzRecord{video, 0, avcFrameBody(0, []byte{9, 0xf0}, testIDR)},
		fuzzRecord{audio, 10, []byte{0xaf, 1, 0x21, 0x10, 0x04, 0x60, 0x8c, 0x1c}},
		fuzzRecord{video, 23, avcFrameBody(0, []byte{0x41, 0x9a, 0x02})},
		fuzzRecord{video, 33, avcFrameBody(0, testSPS, testPPS, testIDR)},
		fuzzRecord{command, 0, amf("deleteStream", 4.0, nil, 1.0)},
	))
	f.Add(encodeRecords(
		fuzzRecord{video, 0, avcConfigBody()},
		fuzzRecord{video, 33, avcFrameBody(66, testIDR)},
	))
	f.Add(encodeRecords(fuzzRecord{video, 0, []byte{0x22, 0, 0, 0, 0, 1, 2}}))
	f.Add(encodeRecords(fuzzRecord{audio, 0, []byte{0x2f, 1, 2, 3}}))
	f.Fuzz(func(t *testing.T, data []byte) {
		ctx, cancel := context.WithCancelCause(context.Background())
		defer cancel(nil)
		out := newSink(nopStream{}, cancel)
		go out.run()
		p := newPublisher(ctx, publisherConfig{
			maxWidth: 1280, maxHeight: 720, maxBitrate: 8_500_000,
			newAudio: func(context.Context, []byte) (audioEncoder, error) {
				return nopAudio{closed: make(chan struct{})}, nil
			},
		}, out, cancel, slog.New(slog.DiscardHandler))
		r := message.NewReader(bytes.NewReader(decodeRecords(data)), bytecounter.NewReader(bytes.NewReader(nil)),
			func(uint32) error { return nil })
		now := time.Now()
		for {
			msg, err := r.Read()
			if err != nil {
				if err != io.EOF {
					if r := parseRefusal(err); r.Code == "" || r.Message == "" {
						t.Fatalf("refusal %+v for %v", r, err)
					}
				}
				break
			}
			if err := p.handle(msg, now); err != nil {
				var r *Refusal
				if !errors.Is(err, errUnpublished) && !errors.As(err, &r) {
					t.Fatalf("handle: %v, neither a refusal nor the end", err)
				}
				break
			}
		}
		p.close()
		out.end(nil)
		<-out.done
	})
}

// trackStream records the video tracks a stream begins with and those of
// its frames.
type trackStream struct {
	nopStream
	mu     sync.Mutex
	info   StreamInfo
	frames map[uint8]int
}

func (s *trackStream) Begin(info StreamInfo) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.info = info
	return nil
}

func (s *trackStream) WriteVideo(track uint8, _ time.Duration, _ [][]byte, _ bool) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.frames == nil {
		s.frames = map[uint8]int{}
	}
	s.frames[track]++
	return nil
}

// TestPublisherMultitrack: an enhanced RTMP stream of two video tracks
// begins with both, and each frame goes with its track.
func TestPublisherMultitrack(t *testing.T) {
	video, audio := byte(0), byte(1)
	stream := &trackStream{}
	ctx, cancel := context.WithCancelCause(context.Background())
	defer cancel(nil)
	out := newSink(stream, cancel)
	go out.run()
	p := newPublisher(ctx, publisherConfig{
		maxWidth: 1280, maxHeight: 720, maxBitrate: 8_500_000,
		newAudio: func(context.Context, []byte) (audioEncoder, error) { return nopAudio{closed: make(chan struct{})}, nil },
	}, out, cancel, slog.New(slog.DiscardHandler))
	recs := []fuzzRecord{{video, 0, avcConfigBody()}, {video, 0, multitrackConfig(2)}, {audio, 0, []byte{0xaf, 0, 0x12, 0x10}},
		{video, 0, avcFrameBody(0, testIDR)}, {video, 0, multitrackFrame(2, testIDR)},
		{video, 33, avcFrameBody(0, testIDR)}, {video, 0, multitrackFrame(2, testIDR)}, {video, 0, multitrackFrame(2, testIDR)}}
	r := message.NewReader(bytes.NewReader(decodeRecords(encodeRecords(recs...))), bytecounter.NewReader(bytes.NewReader(nil)),
		func(uint32) error { return nil })
	for {
		msg, err := r.Read()
		if err == io.EOF {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		if err := p.handle(msg, time.Now()); err != nil {
			t.Fatalf("handle: %v", err)
		}
	}
	p.close()
	out.end(nil)
	<-out.done
	stream.mu.Lock()
	defer stream.mu.Unlock()
	var ids []uint8
	for _, v := range stream.info.Video {
		ids = append(ids, v.ID)
		if v.Width != 64 || v.Height != 48 || len(v.SPS) == 0 || len(v.PPS) == 0 {
			t.Errorf("track %d: %dx%d, SPS %d bytes, PPS %d bytes", v.ID, v.Width, v.Height, len(v.SPS), len(v.PPS))
		}
	}
	if !slices.Equal(ids, []uint8{0, 2}) {
		t.Errorf("Begin with video tracks %v, want [0 2]", ids)
	}
	if stream.frames[0] != 2 || stream.frames[2] != 3 || len(stream.frames) != 2 {
		t.Errorf("frames by track %v, want 2 of track 0 and 3 of track 2", stream.frames)
	}
}

// TestPublisherRules runs the rules on made-up messages, without ffmpeg.
func TestPublisherRules(t *testing.T) {
	video, audio := byte(0), byte(1)
	aacConfig := fuzzRecord{audio, 0, []byte{0xaf, 0, 0x12, 0x10}}
	aacFrame := func(step byte) fuzzRecord { return fuzzRecord{audio, step, []byte{0xaf, 1, 0x21, 0x10, 0x04}} }
	for _, tc := range []struct {
		name string
		recs []fuzzRecord
		want string // the refusal's code, "" for none
	}{
		{"good", []fuzzRecord{{video, 0, avcConfigBody()}, aacConfig, {video, 0, avcFrameBody(0, testIDR)}, aacFrame(10)}, ""},
		{"B-frames", []fuzzRecord{{video, 0, avcConfigBody()}, aacConfig, {video, 0, avcFrameBody(66, testIDR)}}, CodeBFramePresent},
		{"H.265", []fuzzRecord{{video, 0, []byte{0x1c, 0, 0, 0, 0, 1}}}, CodeInvalidVideoCodec},
		{"G.711", []fuzzRecord{{audio, 0, []byte{0x72, 1, 2}}}, CodeInvalidAudioCodec},
		{"no audio", []fuzzRecord{{video, 0, avcConfigBody()}, {video, 0, avcFrameBody(0, testIDR)},
			{video, 200, avcFrameBody(0, testIDR)}, {video, 200, avcFrameBody(0, testIDR)}, {video, 200, avcFrameBody(0, testIDR)},
			{video, 200, avcFrameBody(0, testIDR)}}, ""}, // 3 s not yet there
		{"no audio for 3 s", []fuzzRecord{{video, 0, avcConfigBody()}, {video, 0, avcFrameBody(0, testIDR)},
			{video, 255, avcFrameBody(0, testIDR)}, {video, 255, avcFrameBody(0, testIDR)}, {video, 255, avcFrameBody(0, testIDR)},
			{video, 255, avcFrameBody(0, testIDR)}, {video, 255, avcFrameBody(0, testIDR)}, {video, 255, avcFrameBody(0, testIDR)},
			{video, 255, avcFrameBody(0, testIDR)}, {video, 255, avcFrameBody(0, testIDR)}, {video, 255, avcFrameBody(0, testIDR)},
			{video, 255, avcFrameBody(0, testIDR)}, {video, 255, avcFrameBody(0, testIDR)}, {video, 255, avcFrameBody(0, testIDR)}}, CodeInvalidInput},
		{"multitrack video", []fuzzRecord{{video, 0, avcConfigBody()}, {video, 0, multitrackConfig(1)}, aacConfig,
			{video, 0, avcFrameBody(0, testIDR)}, {video, 0, multitrackFrame(1, testIDR)}, aacFrame(10)}, ""},
		{"four video tracks", []fuzzRecord{{video, 0, avcConfigBody()}, {video, 0, multitrackConfig(1)},
			{video, 0, multitrackConfig(2)}, {video, 0, multitrackConfig(3)}}, CodeInvalidVideoCodec},
		{"a video track after the start", []fuzzRecord{{video, 0, avcConfigBody()}, aacConfig,
			{video, 0, avcFrameBody(0, testIDR)}, aacFrame(10), {video, 0, multitrackConfig(1)}}, CodeInvalidInput},
		{"B-frames in a second track", []fuzzRecord{{video, 0, avcConfigBody()}, {video, 0, multitrackConfig(1)}, aacConfig,
			{video, 0, avcFrameBody(0, testIDR)}, {video, 0, multitrackCodedFrame(1, 66, testIDR)}}, CodeBFramePresent},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			out := newSink(nopStream{}, cancel)
			go out.run()
			p := newPublisher(ctx, publisherConfig{
				maxWidth: 1280, maxHeight: 720, maxBitrate: 8_500_000,
				newAudio: func(context.Context, []byte) (audioEncoder, error) {
					return nopAudio{closed: make(chan struct{})}, nil
				},
			}, out, cancel, slog.New(slog.DiscardHandler))
			defer func() {
				p.close()
				out.end(nil)
				<-out.done
			}()
			r := message.NewReader(bytes.NewReader(decodeRecords(encodeRecords(tc.recs...))), bytecounter.NewReader(bytes.NewReader(nil)),
				func(uint32) error { return nil })
			var got error
			for got == nil {
				msg, err := r.Read()
				if err == io.EOF {
					break
				} else if err != nil {
					got = parseRefusal(err)
					break
				}
				got = p.handle(msg, time.Now())
			}
			var refusal *Refusal
			switch {
			case tc.want == "" && got != nil:
				t.Errorf("got %v, want nil", got)
			case tc.want != "" && (!errors.As(got, &refusal) || refusal.Code != tc.want):
				t.Errorf("got %v, want %s", got, tc.want)
			}
		})
	}
}
