package forward

import "strings"

// H.264 NAL unit types (RFC 6184, section 5.4).
const (
	naluIDR   = 5
	naluSPS   = 7
	naluSTAPA = 24
	naluFUA   = 28
)

// KeyframeStart reports whether payload, the payload of one RTP packet of
// the codec named by mimeType, is where a decoder joining the stream can
// start: the first packet of a keyframe, or the parameter sets sent just
// before one. Audio codecs need no keyframe, so every packet qualifies.
// Payloads it cannot parse never qualify.
func KeyframeStart(mimeType string, payload []byte) bool {
	switch {
	case strings.EqualFold(mimeType, "video/H264"):
		return h264KeyframeStart(payload)
	case strings.EqualFold(mimeType, "video/VP8"):
		return vp8KeyframeStart(payload)
	case strings.HasPrefix(strings.ToLower(mimeType), "audio/"):
		return true
	}
	return false
}

// h264KeyframeStart looks for a sequence parameter set or the start of an
// IDR slice in a packet of packetization mode 0 or 1 (RFC 6184, section
// 5.6 single NAL unit, 5.7.1 STAP-A, 5.8 FU-A).
func h264KeyframeStart(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	switch typ := p[0] & 0x1f; typ {
	case naluIDR, naluSPS:
		return true
	case naluSTAPA:
		for rest := p[1:]; len(rest) >= 2; {
			size := int(rest[0])<<8 | int(rest[1])
			rest = rest[2:]
			if size == 0 || size > len(rest) {
				return false
			}
			if t := rest[0] & 0x1f; t == naluIDR || t == naluSPS {
				return true
			}
			rest = rest[size:]
		}
	case naluFUA:
		// FU header: S, E, R, type.
		return len(p) >= 2 && p[1]&0x80 != 0 && p[1]&0x1f == naluIDR
	}
	return false
}

// vp8KeyframeStart parses the VP8 payload descriptor (RFC 7741, section
// 4.2) and reports whether the packet starts partition 0 of a frame whose
// payload header marks a key frame (section 4.3, P bit clear).
func vp8KeyframeStart(p []byte) bool {
	if len(p) < 1 {
		return false
	}
	x, s, pid := p[0]&0x80 != 0, p[0]&0x10 != 0, p[0]&0x07
	if !s || pid != 0 {
		return false
	}
	i := 1
	if x {
		if len(p) <= i {
			return false
		}
		ext := p[i]
		i++
		if ext&0x80 != 0 { // I: PictureID, 7 or 15 bits
			if len(p) <= i {
				return false
			}
			if p[i]&0x80 != 0 {
				i++
			}
			i++
		}
		if ext&0x40 != 0 { // L: TL0PICIDX
			i++
		}
		if ext&0x30 != 0 { // T or K: TID/Y/KEYIDX
			i++
		}
	}
	if len(p) <= i {
		return false
	}
	return p[i]&0x01 == 0
}
