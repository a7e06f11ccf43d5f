package forward

// A VP8 receiver orders frames by the picture ID of their payload
// descriptor (RFC 7741, section 4.2) and drops as too old a frame whose
// picture ID is behind the last it decoded: a subscriber switched to
// another simulcast layer, whose encoder counts on its own, or to a
// publisher's re-initialized encoder, could wait seconds for the new
// stream's IDs to catch up. So the IDs a subscriber sees, and the
// TL0PICIDX of temporal layers, are made to follow on from the last it
// was sent at every keyframe that starts a new stream or breaks the
// count; in between they keep a constant offset. While the offsets are
// zero, payloads are forwarded as they are; otherwise each is copied to
// be rewritten.
type vp8Munger struct {
	started bool
	pidOff  uint16 // added to picture IDs, modulo 2^15
	tl0Off  uint8  // added to TL0PICIDX, modulo 2^8
	lastIn  uint16 // the last picture ID seen, and sent
	lastOut uint16
	tl0Out  uint8 // the last TL0PICIDX sent
	buf     []byte
}

// vp8Fields locates the picture ID (1 or 2 bytes; 0 if absent) and the
// TL0PICIDX (-1 if absent) of a VP8 payload descriptor.
func vp8Fields(p []byte) (pidAt, pidLen, tl0At int, ok bool) {
	if len(p) < 1 || p[0]&0x80 == 0 {
		return 0, 0, -1, len(p) > 0
	}
	if len(p) < 2 {
		return 0, 0, -1, false
	}
	ext, i := p[1], 2
	tl0At = -1
	if ext&0x80 != 0 {
		if len(p) <= i {
			return 0, 0, -1, false
		}
		pidAt, pidLen = i, 1
		if p[i]&0x80 != 0 {
			pidLen = 2
		}
		i += pidLen
	}
	if ext&0x40 != 0 {
		tl0At = i
		i++
	}
	return pidAt, pidLen, tl0At, i <= len(p)
}

// rewrite returns the payload to send for p, a VP8 payload: rebased if
// keyframe starts a frame that breaks the count or a new stream (fresh).
func (m *vp8Munger) rewrite(p []byte, keyframe, fresh bool) []byte {
	pidAt, pidLen, tl0At, ok := vp8Fields(p)
	if !ok || pidLen == 0 {
		return p
	}
	in := uint16(p[pidAt] & 0x7f)
	mask := uint16(0x7f)
	if pidLen == 2 {
		in = in<<8 | uint16(p[pidAt+1])
		mask = 0x7fff
	}
	var tl0 uint8
	if tl0At >= 0 {
		tl0 = p[tl0At]
	}
	rebased := false
	if keyframe && m.started {
		if next := (m.lastIn + 1) & mask; fresh || (in != next && in != m.lastIn&mask) {
			m.pidOff = (m.lastOut + 1 - in) & mask
			m.tl0Off = m.tl0Out + 1 - tl0
			rebased = true
		}
	}
	out := (in + m.pidOff) & mask
	// The newest picture sent is what the next stream follows on from;
	// a late packet of an older one does not move it back.
	if !m.started || rebased || int16((in-m.lastIn)<<1) > 0 {
		m.lastIn, m.lastOut = in, out
		if tl0At >= 0 {
			m.tl0Out = tl0 + m.tl0Off
		}
	}
	m.started = true
	if m.pidOff == 0 && m.tl0Off == 0 {
		return p
	}
	m.buf = append(m.buf[:0], p...)
	if pidLen == 2 {
		m.buf[pidAt] = 0x80 | byte(out>>8)
		m.buf[pidAt+1] = byte(out)
	} else {
		m.buf[pidAt] = byte(out)
	}
	if tl0At >= 0 {
		m.buf[tl0At] = tl0 + m.tl0Off
	}
	return m.buf
}

// translate rewrites p with the current offsets, without moving them:
// for a retransmission of a packet sent already.
func (m *vp8Munger) translate(p []byte) []byte {
	if m.pidOff == 0 && m.tl0Off == 0 {
		return p
	}
	pidAt, pidLen, tl0At, ok := vp8Fields(p)
	if !ok || pidLen == 0 {
		return p
	}
	buf := append([]byte(nil), p...)
	if pidLen == 2 {
		out := (uint16(p[pidAt]&0x7f)<<8 | uint16(p[pidAt+1]) + m.pidOff) & 0x7fff
		buf[pidAt], buf[pidAt+1] = 0x80|byte(out>>8), byte(out)
	} else {
		buf[pidAt] = byte((uint16(p[pidAt]&0x7f) + m.pidOff) & 0x7f)
	}
	if tl0At >= 0 {
		buf[tl0At] = p[tl0At] + m.tl0Off
	}
	return buf
}
