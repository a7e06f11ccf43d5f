package engine

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bluenviron/gortsplib/v5/pkg/format/rtph264"
	"github.com/bluenviron/gortsplib/v5/pkg/format/rtpvp8"
	"github.com/bluenviron/mediacommon/v2/pkg/codecs/h264"
	"github.com/ivsrt/ivsrt/composition/layout"
	"github.com/pion/rtp"
	"github.com/pion/webrtc/v4/pkg/media/oggwriter"
)

// Video codecs an input takes, as WriteVideoRTP names them.
const (
	CodecH264 = "H264"
	CodecVP8  = "VP8"
)

// Bounds of an input's queues and buffers. Each drops rather than waits,
// so that a slow decoder never holds up the caller (the SFU's forwarding)
// or the compositor.
const (
	videoQueue   = 90              // access units, 3 s at 30 fps
	audioQueue   = 50              // Opus packets, 1 s
	gopMaxUnits  = 600             // access units kept since the last keyframe
	gopMaxBytes  = 16 << 20        // and their bytes
	pcmPrime     = 3 * chunkBytes  // buffered before an input is heard
	pcmHigh      = 15 * chunkBytes // 300 ms: beyond this, latency is cut
	pcmLow       = 5 * chunkBytes  // down to 100 ms
	restartFloor = 250 * time.Millisecond
	restartCeil  = 5 * time.Second
)

// Input is one publishing participant's media entering the engine. Its
// methods may be called from any goroutine and never block on the
// decoders.
type Input struct {
	e      *Engine
	id     string
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	frame atomic.Pointer[frame]       // the latest decoded picture, nil for none
	tile  atomic.Pointer[layout.Tile] // where it is drawn, nil for nowhere
	kick  chan struct{}               // the tile changed
	// videoPID is the running video decoder's process id, 0 for none.
	videoPID atomic.Int64

	vmu      sync.Mutex // the depacketizer's state
	codec    string
	h264     *rtph264.Decoder
	vp8      *rtpvp8.Decoder
	needKey  bool // video was dropped: skip to the next keyframe
	width    int  // the video's size, from its bitstream
	height   int
	videoQ   chan accessUnit
	audioQ   chan *rtp.Packet
	pcmMu    sync.Mutex // pcm and primed
	pcm      []byte
	primed   bool
	counters struct {
		videoDropped, audioDropped, pcmDropped, pcmDecoded, restarts, frames atomic.Int64
	}
}

// InputStats are an input's counters.
type InputStats struct {
	// VideoDropped and AudioDropped are RTP-level units dropped because a
	// decoder was behind (or undecodable); PCMDropped are bytes of decoded
	// audio cut to keep latency bounded.
	VideoDropped, AudioDropped, PCMDropped int64
	// PCMDecoded counts bytes of decoded audio (48 kHz stereo s16).
	PCMDecoded int64
	// Restarts counts video decoder restarts (tile changes, failures).
	Restarts int64
	// Frames counts decoded frames.
	Frames int64
}

// Stats returns the input's counters.
func (in *Input) Stats() InputStats {
	return InputStats{
		VideoDropped: in.counters.videoDropped.Load(),
		AudioDropped: in.counters.audioDropped.Load(),
		PCMDropped:   in.counters.pcmDropped.Load(),
		PCMDecoded:   in.counters.pcmDecoded.Load(),
		Restarts:     in.counters.restarts.Load(),
		Frames:       in.counters.frames.Load(),
	}
}

// ID is the input's participant id.
func (in *Input) ID() string { return in.id }

// frame is a decoded yuv420p picture.
type frame struct {
	w, h int
	data []byte
}

// accessUnit is one coded picture: Annex-B H.264 or a VP8 frame.
type accessUnit struct {
	codec string
	data  []byte
	key   bool
}

func newInput(e *Engine, id string) *Input {
	in := &Input{
		e:      e,
		id:     id,
		kick:   make(chan struct{}, 1),
		videoQ: make(chan accessUnit, videoQueue),
		audioQ: make(chan *rtp.Packet, audioQueue),
	}
	in.ctx, in.cancel = context.WithCancel(e.ctx)
	in.wg.Add(2)
	go func() {
		defer in.wg.Done()
		in.runVideo()
	}()
	go func() {
		defer in.wg.Done()
		in.runAudio()
	}()
	return in
}

// stop ends the input's goroutines and processes and waits for them.
func (in *Input) stop() {
	in.cancel()
	in.wg.Wait()
}

// setTile tells the input where it is drawn (the zero Tile: nowhere).
func (in *Input) setTile(t layout.Tile) {
	if t.ParticipantID == "" || !t.ShowsVideo {
		in.tile.Store(nil)
	} else {
		in.tile.Store(&t)
	}
	select {
	case in.kick <- struct{}{}:
	default: // a kick is pending; it reads the latest tile
	}
}

// WriteVideoRTP takes one RTP packet of the input's video, codec "H264"
// (RFC 6184, packetization mode 1) or "VP8" (RFC 7741); a MIME type such
// as "video/H264" does too. Packets must come in order. It does not
// retain pkt.
func (in *Input) WriteVideoRTP(codec string, pkt *rtp.Packet) error {
	codec = strings.ToUpper(strings.TrimPrefix(strings.ToLower(codec), "video/"))
	if codec != CodecH264 && codec != CodecVP8 {
		return fmt.Errorf("engine: video codec %q: want H264 or VP8", codec)
	}
	if in.ctx.Err() != nil {
		return ErrClosed
	}
	au, size, ok, err := in.depacketize(codec, pkt)
	if err != nil || !ok {
		return err
	}
	if size != [2]int{} && in.e.cfg.OnVideoSize != nil {
		in.e.cfg.OnVideoSize(in.id, size[0], size[1])
	}
	select {
	case in.videoQ <- au:
	default:
		// The decoder is behind. What follows cannot be decoded without
		// what was dropped, so skip to the next keyframe and ask for one.
		in.counters.videoDropped.Add(1)
		in.vmu.Lock()
		in.needKey = true
		in.vmu.Unlock()
		in.keyframeNeeded()
	}
	return nil
}

func (in *Input) keyframeNeeded() {
	if f := in.e.cfg.OnKeyframeNeeded; f != nil {
		f(in.id)
	}
}

// depacketize adds pkt to the access unit being assembled and returns it
// when complete (ok), and the video's size when it has changed.
func (in *Input) depacketize(codec string, pkt *rtp.Packet) (au accessUnit, size [2]int, ok bool, err error) {
	in.vmu.Lock()
	defer in.vmu.Unlock()
	if codec != in.codec {
		// A new codec (or the first packet): a new depacketizer, and
		// nothing can be decoded before its first keyframe.
		in.codec, in.h264, in.vp8, in.needKey = codec, nil, nil, true
		if codec == CodecH264 {
			in.h264 = &rtph264.Decoder{PacketizationMode: 1}
			err = in.h264.Init()
		} else {
			in.vp8 = &rtpvp8.Decoder{}
			err = in.vp8.Init()
		}
		if err != nil {
			return au, size, false, fmt.Errorf("engine: %w", err)
		}
	}
	au.codec = codec
	var w, h int
	if codec == CodecH264 {
		nalus, err := in.h264.Decode(pkt)
		if err != nil {
			if !errors.Is(err, rtph264.ErrMorePacketsNeeded) {
				in.counters.videoDropped.Add(1) // loss inside a fragmented unit
			}
			return au, size, false, nil
		}
		au.data, au.key, w, h = annexB(nalus)
	} else {
		f, err := in.vp8.Decode(pkt)
		if err != nil {
			if !errors.Is(err, rtpvp8.ErrMorePacketsNeeded) {
				in.counters.videoDropped.Add(1)
			}
			return au, size, false, nil
		}
		au.data = f
		au.key, w, h = vp8Keyframe(f)
	}
	if in.needKey && !au.key {
		in.counters.videoDropped.Add(1)
		return au, size, false, nil
	}
	in.needKey = false
	if w > 0 && h > 0 && (w != in.width || h != in.height) {
		in.width, in.height = w, h
		size = [2]int{w, h}
	}
	return au, size, true, nil
}

// VideoSize returns the size of the input's video as its bitstream says,
// and false while no keyframe has been seen.
func (in *Input) VideoSize() (width, height int, ok bool) {
	in.vmu.Lock()
	defer in.vmu.Unlock()
	return in.width, in.height, in.width > 0
}

// annexB joins NAL units into an Annex-B access unit, telling whether it
// holds an IDR picture and the size its SPS gives, if it has one.
func annexB(nalus [][]byte) (b []byte, key bool, w, h int) {
	n := 0
	for _, nalu := range nalus {
		n += 4 + len(nalu)
	}
	b = make([]byte, 0, n)
	for _, nalu := range nalus {
		if len(nalu) == 0 {
			continue
		}
		switch h264.NALUType(nalu[0] & 0x1f) {
		case h264.NALUTypeIDR:
			key = true
		case h264.NALUTypeSPS:
			var sps h264.SPS
			if sps.Unmarshal(nalu) == nil {
				w, h = sps.Width(), sps.Height()
			}
		}
		b = append(b, 0, 0, 0, 1)
		b = append(b, nalu...)
	}
	return b, key, w, h
}

// vp8Keyframe tells whether a VP8 frame is a keyframe and its size
// (RFC 6386 section 9.1: a 3-byte tag whose first bit is 0 for a
// keyframe, then a start code and two 14-bit dimensions).
func vp8Keyframe(f []byte) (key bool, w, h int) {
	if len(f) < 10 || f[0]&1 != 0 {
		return false, 0, 0
	}
	return true, int(binary.LittleEndian.Uint16(f[6:]) & 0x3fff), int(binary.LittleEndian.Uint16(f[8:]) & 0x3fff)
}

// target is what a video decoder makes: its codec, and the crop and size
// of the tile's picture.
type target struct {
	codec string
	w, h  int
	crop  layout.Rect
}

// runVideo feeds the input's video decoder: it keeps the access units
// since the last keyframe, starts a decoder when the input has a tile,
// restarts it when the tile's picture changes size or crop, or when it
// dies, and replays the kept units so that the new one has a picture at
// once.
func (in *Input) runVideo() {
	var (
		dec      *videoDecoder
		gop      []accessUnit
		gopBytes int
		failures int
		retry    <-chan time.Time
		dead     <-chan struct{}
	)
	stopDec := func() {
		if dec != nil {
			dec.stop()
			dec, dead = nil, nil
		}
	}
	defer stopDec()
	// want is the decoder the current tile and stream call for.
	want := func() (target, bool) {
		t := in.tile.Load()
		if t == nil || len(gop) == 0 {
			return target{}, false
		}
		return target{codec: gop[0].codec, w: t.Picture.Width, h: t.Picture.Height, crop: t.Crop}, true
	}
	reconcile := func() {
		tg, ok := want()
		if !ok {
			if dec != nil {
				stopDec()
			}
			if in.tile.Load() == nil {
				in.frame.Store(nil) // not shown: no stale picture when shown again
			} else if dec == nil && retry == nil {
				in.keyframeNeeded() // shown, but nothing to decode from yet
			}
			return
		}
		if dec != nil && dec.target == tg {
			return
		}
		if retry != nil {
			return // a failed decoder's restart is pending
		}
		if dec != nil {
			in.counters.restarts.Add(1)
		}
		stopDec()
		d, err := in.startVideoDecoder(tg, gop)
		if err != nil {
			in.reportError(err)
			failures++
			retry = time.After(backoff(failures))
			return
		}
		dec, dead = d, d.proc.done
	}
	for {
		select {
		case au := <-in.videoQ:
			if au.key {
				gop, gopBytes = gop[:0], 0
			}
			if len(gop) > 0 && au.codec != gop[0].codec {
				gop, gopBytes = gop[:0], 0 // the codec changed; it starts with a keyframe
				continue
			}
			if len(gop) == 0 && !au.key {
				continue
			}
			if len(gop) >= gopMaxUnits || gopBytes+len(au.data) > gopMaxBytes {
				// Too long since the last keyframe to keep it all: a
				// restart would have to wait for the next one.
				gop, gopBytes = gop[:0], 0
				in.keyframeNeeded()
				continue
			}
			gop = append(gop, au)
			gopBytes += len(au.data)
			if dec == nil || dec.target.codec != au.codec {
				reconcile() // may start a decoder, which is given the gop, au included
				continue
			}
			if !dec.write(au.data) {
				in.counters.videoDropped.Add(1)
			}
		case <-in.kick:
			reconcile()
		case <-dead:
			err := dec.proc.err
			if err == nil {
				err = fmt.Errorf("video decoder of %q ended: %s", in.id, dec.proc.stderr.String())
			}
			stopDec()
			in.frame.Store(nil) // its tile shows nothing until a new decoder has a picture
			in.reportError(err)
			failures++
			retry = time.After(backoff(failures))
		case <-retry:
			retry = nil
			reconcile()
		case <-in.ctx.Done():
			return
		}
		if dec != nil && time.Since(dec.started) > 10*time.Second {
			failures = 0 // it has run long enough to count as healthy
		}
	}
}

func backoff(failures int) time.Duration {
	d := restartFloor << min(failures-1, 5)
	return min(d, restartCeil)
}

func (in *Input) reportError(err error) {
	in.e.log.Warn("input decoder failed", "input", in.id, "err", err)
	if f := in.e.cfg.OnInputError; f != nil {
		f(in.id, err)
	}
}

// videoDecoder is a running video decoder and the goroutine reading its
// frames.
type videoDecoder struct {
	target  target
	proc    *proc
	stdin   *os.File
	started time.Time
	read    chan struct{} // closed when the reader has stopped
}

// startVideoDecoder starts a decoder for tg and gives it gop.
func (in *Input) startVideoDecoder(tg target, gop []accessUnit) (*videoDecoder, error) {
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error", "-threads", "1",
		"-fflags", "nobuffer", "-flags", "low_delay", "-probesize", "32", "-analyzeduration", "0"}
	if tg.codec == CodecVP8 {
		args = append(args, "-f", "ivf")
	} else {
		args = append(args, "-f", "h264")
	}
	vf := fmt.Sprintf("scale=%d:%d:flags=bilinear,format=yuv420p", tg.w, tg.h)
	if !tg.crop.Empty() {
		// Clamped to the picture, so that a crop computed for a size the
		// video no longer has still gives a picture.
		vf = fmt.Sprintf(`crop=w=min(%d\,iw):h=min(%d\,ih):x=min(%d\,iw-ow):y=min(%d\,ih-oh),`,
			tg.crop.Width, tg.crop.Height, tg.crop.X, tg.crop.Y) + vf
	}
	args = append(args, "-i", "pipe:0", "-map", "0:v", "-vf", vf, "-fps_mode", "passthrough",
		"-f", "rawvideo", "-pix_fmt", "yuv420p", "-flush_packets", "1", "pipe:1")

	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, fmt.Errorf("engine: %w", err)
	}
	p, err := startProc("video decoder of "+in.id, in.e.cfg.FFmpeg, args, inR, outW)
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, err
	}
	d := &videoDecoder{target: tg, proc: p, stdin: inW, started: time.Now(), read: make(chan struct{})}
	in.videoPID.Store(int64(p.pid()))
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		defer close(d.read)
		defer outR.Close()
		size := tg.w * tg.h * 3 / 2
		for {
			// A fresh buffer each frame: the compositor may still be
			// reading the last one, and sharing nothing needs no lock.
			buf := make([]byte, size)
			if _, err := io.ReadFull(outR, buf); err != nil {
				return
			}
			in.frame.Store(&frame{w: tg.w, h: tg.h, data: buf})
			in.counters.frames.Add(1)
		}
	}()
	in.wg.Add(1)
	go func() {
		defer in.wg.Done()
		in.e.account(p)
	}()
	if tg.codec == CodecVP8 {
		w, h := 0, 0
		if _, kw, kh := vp8Keyframe(gop[0].data); kw > 0 {
			w, h = kw, kh
		}
		// The file's header as it is: write would put a frame's header
		// before it.
		if _, err := d.stdin.Write(ivfHeader(w, h)); err != nil {
			return d, nil // it died at once; runVideo sees it
		}
	}
	for _, au := range gop {
		if !d.write(au.data) {
			break
		}
	}
	return d, nil
}

// write gives the decoder an access unit; false if it is gone. It blocks
// while the decoder is busy, which only holds up this input's queue.
func (d *videoDecoder) write(b []byte) bool {
	if d.target.codec == CodecVP8 {
		var hdr [12]byte
		binary.LittleEndian.PutUint32(hdr[:], uint32(len(b)))
		// Timestamps do not matter: frames are passed through as decoded.
		if _, err := d.stdin.Write(hdr[:]); err != nil {
			return false
		}
	}
	_, err := d.stdin.Write(b)
	return err == nil
}

// stop kills the decoder and waits for its reader, so that no frame of it
// is stored after it.
func (d *videoDecoder) stop() {
	d.stdin.Close()
	d.proc.kill()
	<-d.read
	<-d.proc.done
}

// ivfHeader is the 32-byte header of an IVF stream of VP8.
func ivfHeader(w, h int) []byte {
	b := make([]byte, 32)
	copy(b, "DKIF")
	binary.LittleEndian.PutUint16(b[6:], 32)
	copy(b[8:], "VP80")
	binary.LittleEndian.PutUint16(b[12:], uint16(w))
	binary.LittleEndian.PutUint16(b[14:], uint16(h))
	binary.LittleEndian.PutUint32(b[16:], 30) // time base 1/30, unused
	binary.LittleEndian.PutUint32(b[20:], 1)
	return b
}

// WriteAudioRTP takes one RTP packet of the input's Opus audio (48 kHz).
// It does not retain pkt.
func (in *Input) WriteAudioRTP(pkt *rtp.Packet) error {
	if in.ctx.Err() != nil {
		return ErrClosed
	}
	if len(pkt.Payload) == 0 {
		return nil
	}
	c := &rtp.Packet{Header: pkt.Header, Payload: append([]byte(nil), pkt.Payload...)}
	select {
	case in.audioQ <- c:
	default:
		in.counters.audioDropped.Add(1)
	}
	return nil
}

// runAudio feeds the input's audio decoder, started at the first packet
// and again, after a pause, at the next packet when it has died.
func (in *Input) runAudio() {
	var (
		p       *proc
		stdin   *os.File
		ogg     *oggwriter.OggWriter
		read    chan struct{}
		dead    <-chan struct{}
		notTill time.Time
		fails   int
	)
	stop := func() {
		if p != nil {
			stdin.Close()
			p.kill()
			<-read
			<-p.done
			p, dead = nil, nil
		}
	}
	defer stop()
	for {
		select {
		case pkt := <-in.audioQ:
			if p == nil {
				if time.Now().Before(notTill) {
					in.counters.audioDropped.Add(1)
					continue
				}
				var err error
				if p, stdin, ogg, read, err = in.startAudioDecoder(); err != nil {
					in.reportError(err)
					fails++
					notTill = time.Now().Add(backoff(fails))
					continue
				}
				dead = p.done
			}
			if err := ogg.WriteRTP(pkt); err != nil {
				in.counters.audioDropped.Add(1) // a broken pipe shows as dead below
			}
		case <-dead:
			err := p.err
			if err == nil {
				err = fmt.Errorf("audio decoder of %q ended: %s", in.id, p.stderr.String())
			}
			stop()
			in.reportError(err)
			fails++
			notTill = time.Now().Add(backoff(fails))
		case <-in.ctx.Done():
			return
		}
	}
}

func (in *Input) startAudioDecoder() (*proc, *os.File, *oggwriter.OggWriter, chan struct{}, error) {
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error",
		"-fflags", "nobuffer", "-probesize", "32", "-analyzeduration", "0",
		"-f", "ogg", "-i", "pipe:0", "-map", "0:a",
		"-f", "s16le", "-ar", fmt.Sprint(sampleRate), "-ac", fmt.Sprint(channels), "-flush_packets", "1", "pipe:1"}
	inR, inW, err := os.Pipe()
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("engine: %w", err)
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		inR.Close()
		inW.Close()
		return nil, nil, nil, nil, fmt.Errorf("engine: %w", err)
	}
	p, err := startProc("audio decoder of "+in.id, in.e.cfg.FFmpeg, args, inR, outW)
	if err != nil {
		inW.Close()
		outR.Close()
		return nil, nil, nil, nil, err
	}
	read := make(chan struct{})
	in.wg.Add(2)
	go func() {
		defer in.wg.Done()
		defer close(read)
		defer outR.Close()
		buf := make([]byte, 4*chunkBytes)
		for {
			n, err := outR.Read(buf)
			if n > 0 {
				in.addPCM(buf[:n])
			}
			if err != nil {
				return
			}
		}
	}()
	go func() {
		defer in.wg.Done()
		in.e.account(p)
	}()
	// The Ogg headers are written here, to the pipe's buffer.
	ogg, err := oggwriter.NewWith(inW, sampleRate, channels)
	if err != nil {
		inW.Close()
		p.kill()
		<-read
		return nil, nil, nil, nil, fmt.Errorf("engine: ogg: %w", err)
	}
	return p, inW, ogg, read, nil
}

// addPCM appends decoded audio, cutting the oldest when too much has piled
// up (the input's clock runs fast, or it came in a burst).
func (in *Input) addPCM(b []byte) {
	in.counters.pcmDecoded.Add(int64(len(b)))
	in.pcmMu.Lock()
	defer in.pcmMu.Unlock()
	in.pcm = append(in.pcm, b...)
	if len(in.pcm) > pcmHigh {
		cut := len(in.pcm) - pcmLow
		cut -= cut % 4 // whole stereo samples
		in.counters.pcmDropped.Add(int64(cut))
		in.pcm = in.pcm[:copy(in.pcm, in.pcm[cut:])]
	}
}

// takePCM adds the input's next 20 ms into acc. An input that has run dry
// is silent until it has pcmPrime again, so that its sound comes back
// whole rather than in crackles.
func (in *Input) takePCM(acc []int32) {
	in.pcmMu.Lock()
	defer in.pcmMu.Unlock()
	if !in.primed {
		if len(in.pcm) < pcmPrime {
			return
		}
		in.primed = true
	}
	n := min(len(in.pcm), chunkBytes) &^ 1
	for i := 0; i < n; i += 2 {
		acc[i/2] += int32(int16(binary.LittleEndian.Uint16(in.pcm[i:])))
	}
	in.pcm = in.pcm[:copy(in.pcm, in.pcm[n:])]
	if n < chunkBytes {
		in.primed = false
	}
}

// mixer sums the inputs' audio.
type mixer struct{ acc []int32 }

func newMixer() *mixer { return &mixer{acc: make([]int32, chunkSamples*channels)} }

// next returns the next 20 ms of the mix, clipped to 16 bits.
func (m *mixer) next(inputs map[string]*Input) []byte {
	clear(m.acc)
	for _, in := range inputs {
		in.takePCM(m.acc)
	}
	out := make([]byte, chunkBytes)
	for i, v := range m.acc {
		binary.LittleEndian.PutUint16(out[2*i:], uint16(int16(max(-32768, min(32767, v)))))
	}
	return out
}
