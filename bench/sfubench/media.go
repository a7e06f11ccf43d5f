package main

import (
	"encoding/binary"
	"errors"
	"math/rand/v2"
	"time"
)

// streamConfig is the synthetic video a publisher sends: VP8 over RTP at a
// constant average bit rate, each frame cut into packets of at most
// payloadSize bytes, a keyframe every keyframeEvery (and whenever one is
// asked for), keyframes keyframeSize times the size of other frames.
type streamConfig struct {
	bitrate       int // bits per second of RTP payload
	payloadSize   int
	fps           int
	keyframeEvery time.Duration
	keyframeSize  float64
	pacing        float64 // send a frame's packets at pacing × the average rate; 0 sends them at once

	// A simulcast layer's: the trailer's magic number, which tells
	// receivers the layer (0: trailerMagic), and the picture size its
	// keyframes declare, by which the SFU ranks the layers (0: 1280x720).
	magic         uint32
	width, height int
}

// The layers of a simulcast publisher (--simulcast), lowest first, as a
// browser sends them: each a quarter of the bit rate and half the width
// and height of the next. The top one is the stream of --bitrate, whose
// trailer is that of a publisher without simulcast: subscribers count
// loss and latency on its counter (see videoSpec).
var simulcastRIDs = []string{"q", "h", "f"}

// layer returns the configuration of simulcast layer i of c (2 is the
// top layer, c itself, 1280x720).
func (c streamConfig) layer(i int) streamConfig {
	down := len(simulcastRIDs) - 1 - i
	c.bitrate >>= 2 * down
	c.width, c.height = 1280>>down, 720>>down
	c.magic = trailerMagic
	if down > 0 {
		c.magic = lowerMagic | uint32(simulcastRIDs[i][0])
	}
	return c
}

// frameBytes returns the size of an inter frame; a keyframe is
// keyframeSize times as large, so that the average over one keyframe
// interval is the bit rate.
func (c streamConfig) frameBytes() int {
	frames := float64(c.fps) * c.keyframeEvery.Seconds()
	if frames < 1 {
		frames = 1
	}
	perInterval := float64(c.bitrate) / 8 * c.keyframeEvery.Seconds()
	return int(perInterval / (frames - 1 + c.keyframeSize))
}

// packetsPerSecond is the average packet rate of the stream, keyframes
// requested by subscribers aside.
func (c streamConfig) packetsPerSecond() float64 {
	inter := ceilDiv(c.frameBytes(), c.payloadSize)
	key := ceilDiv(int(float64(c.frameBytes())*c.keyframeSize), c.payloadSize)
	frames := max(1, float64(c.fps)*c.keyframeEvery.Seconds())
	return (float64(key) + (frames-1)*float64(inter)) / frames * float64(c.fps)
}

func ceilDiv(a, b int) int { return (a + b - 1) / b }

// The bench's trailer closes every payload: a magic number, the
// publisher's own packet counter (the SFU rewrites RTP sequence numbers,
// never the payload) and the send time, so that receivers can count what
// they lost and how late what they got is.
//
// A lower simulcast layer's magic number ends with its rid instead
// ("sfuq", "sfuh"): its counter is its own, so a subscriber that gets
// that layer must not count it as one of the top layer's.
const (
	trailerMagic = 0x73667562 // "sfub"
	lowerMagic   = 0x73667500 // "sfu" and the rid's letter
	trailerSize  = 4 + 8 + 8
)

// packet is one RTP packet of the stream, marshaled, with where it is due.
type packet struct {
	raw     []byte
	counter uint64
	due     time.Time
}

// stream makes the packets of a synthetic VP8 video, frame by frame.
type stream struct {
	cfg      streamConfig
	ssrc     uint32
	seq      uint16
	ts       uint32
	frame    int
	counter  uint64
	lastKey  time.Time
	start    time.Time
	fill     []byte
	keyAsked bool
}

func newStream(cfg streamConfig, start time.Time) *stream {
	fill := make([]byte, cfg.payloadSize)
	for i := range fill {
		fill[i] = byte(rand.Uint32())
	}
	if cfg.magic == 0 {
		cfg.magic = trailerMagic
	}
	if cfg.width == 0 || cfg.height == 0 {
		cfg.width, cfg.height = 1280, 720
	}
	return &stream{cfg: cfg, ssrc: rand.Uint32(), seq: uint16(rand.Uint32()), ts: rand.Uint32(), start: start, fill: fill}
}

// requestKeyframe makes the next frame a keyframe, as an encoder does for
// a PLI.
func (s *stream) requestKeyframe() { s.keyAsked = true }

// nextFrame returns the packets of the next frame, due from the frame's
// start time on; the trailer's send time is filled in when sent.
func (s *stream) nextFrame() []packet {
	interval := time.Second / time.Duration(s.cfg.fps)
	at := s.start.Add(time.Duration(s.frame) * interval)
	key := s.frame == 0 || s.keyAsked || at.Sub(s.lastKey) >= s.cfg.keyframeEvery
	size := s.cfg.frameBytes()
	if key {
		size = int(float64(size) * s.cfg.keyframeSize)
		s.lastKey = at
		s.keyAsked = false
	}
	n := ceilDiv(size, s.cfg.payloadSize)
	var gap time.Duration
	if s.cfg.pacing > 0 {
		gap = time.Duration(float64(interval) / s.cfg.pacing / float64(n))
	}
	pkts := make([]packet, 0, n)
	for i := range n {
		psize := min(s.cfg.payloadSize, size-i*s.cfg.payloadSize)
		psize = max(psize, trailerSize+16)
		raw := make([]byte, 12+psize)
		// RTP header (RFC 3550, section 5.1): version 2, no padding,
		// extension or CSRC; the marker ends the frame. The payload type
		// is the one the publisher negotiated; the relay ignores it.
		raw[0] = 0x80
		raw[1] = 96
		if i == n-1 {
			raw[1] |= 0x80
		}
		binary.BigEndian.PutUint16(raw[2:], s.seq)
		binary.BigEndian.PutUint32(raw[4:], s.ts)
		binary.BigEndian.PutUint32(raw[8:], s.ssrc)
		p := raw[12:]
		copy(p, s.fill)
		writeVP8(p, i == 0, key, s.cfg.width, s.cfg.height)
		binary.BigEndian.PutUint32(p[psize-trailerSize:], s.cfg.magic)
		binary.BigEndian.PutUint64(p[psize-trailerSize+4:], s.counter)
		pkts = append(pkts, packet{raw: raw, counter: s.counter, due: at.Add(time.Duration(i) * gap)})
		s.seq++
		s.counter++
	}
	s.ts += 90000 / uint32(s.cfg.fps)
	s.frame++
	return pkts
}

// writeVP8 writes the VP8 payload descriptor (RFC 7741, section 4.2) at
// the start of p: one byte, S set on the first packet of a frame,
// partition 0. The first packet of a frame also carries the VP8 payload
// header (section 4.3; RFC 6386, section 9.1): the 3-byte frame tag with
// the P bit clear for a keyframe, and for a keyframe the start code and
// the picture's size.
func writeVP8(p []byte, first, key bool, width, height int) {
	if !first {
		p[0] = 0x00
		return
	}
	p[0] = 0x10
	partSize := uint32(len(p) - 1) // any size: nothing decodes it
	tag := partSize<<5 | 1<<4      // show_frame
	if !key {
		tag |= 1 // P: inter frame
	}
	p[1], p[2], p[3] = byte(tag), byte(tag>>8), byte(tag>>16)
	if key {
		copy(p[4:], []byte{0x9d, 0x01, 0x2a})
		binary.LittleEndian.PutUint16(p[7:], uint16(width))
		binary.LittleEndian.PutUint16(p[9:], uint16(height))
	}
}

// stamp writes the send time into the trailer of a marshaled packet.
func stamp(raw []byte, at time.Time) {
	binary.BigEndian.PutUint64(raw[len(raw)-8:], uint64(at.UnixNano()))
}

var errNotOurs = errors.New("not a packet of the bench")

// parseRTP returns the bench's counter and send time (unix nanoseconds)
// from a plain RTP packet.
func parseRTP(b []byte) (counter uint64, sent int64, err error) {
	p, err := rtpPayload(b)
	if err != nil {
		return 0, 0, err
	}
	c, sent, ok := readTrailer(p)
	if !ok {
		return 0, 0, errNotOurs
	}
	return c, sent, nil
}

// rtpPayload returns the payload of a plain RTP packet.
func rtpPayload(b []byte) ([]byte, error) {
	if len(b) < 12 || b[0]>>6 != 2 {
		return nil, errNotOurs
	}
	end := len(b)
	if b[0]&0x20 != 0 { // padding: the last byte counts it
		end -= int(b[end-1])
	}
	off := 12 + 4*int(b[0]&0x0f)
	if b[0]&0x10 != 0 { // header extension
		if len(b) < off+4 {
			return nil, errNotOurs
		}
		off += 4 + 4*int(binary.BigEndian.Uint16(b[off+2:]))
	}
	if off > end {
		return nil, errNotOurs
	}
	return b[off:end], nil
}

// readTrailer returns the counter and send time of the bench's trailer
// at the end of a payload: of a publisher without simulcast, or of the
// top layer of one with.
func readTrailer(p []byte) (counter uint64, sent int64, ok bool) {
	end := len(p)
	if end < trailerSize || binary.BigEndian.Uint32(p[end-trailerSize:]) != trailerMagic {
		return 0, 0, false
	}
	return binary.BigEndian.Uint64(p[end-16:]), int64(binary.BigEndian.Uint64(p[end-8:])), true
}

// readLowerTrailer returns the send time of the trailer of a lower
// simulcast layer's payload.
func readLowerTrailer(p []byte) (sent int64, ok bool) {
	end := len(p)
	if end < trailerSize {
		return 0, false
	}
	if m := binary.BigEndian.Uint32(p[end-trailerSize:]); m == trailerMagic || m&^0xff != lowerMagic {
		return 0, false
	}
	return int64(binary.BigEndian.Uint64(p[end-8:])), true
}
