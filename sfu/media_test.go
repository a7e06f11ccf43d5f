package sfu_test

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/pion/webrtc/v4"
)

// Synthetic media: RTP payloads that a subscriber can check byte for byte.
// Each payload is the codec's own header (so that the server sees real
// keyframe markers), then a block naming the packet, then filler computed
// from that block. Nothing is decoded: the server must not care.

var blockMagic = []byte("ivsr")

// mediaPacket says what a payload is; the payload is a function of it.
type mediaPacket struct {
	Codec  string // MIME type
	Run    uint8  // which connection of the publisher sent it
	Frame  uint32
	Index  uint16 // packet of the frame
	Count  uint16 // packets in the frame
	Key    bool
	SrcSeq uint16 // the publisher's sequence number and timestamp
	SrcTS  uint32
}

const blockSize = 4 + 1 + 4 + 2 + 2 + 1 + 2 + 4

// payload builds the payload of m.
func (m mediaPacket) payload() []byte {
	var b bytes.Buffer
	b.Write(codecHeader(m))
	b.Write(blockMagic)
	b.WriteByte(m.Run)
	binary.Write(&b, binary.BigEndian, m.Frame)
	binary.Write(&b, binary.BigEndian, m.Index)
	binary.Write(&b, binary.BigEndian, m.Count)
	if m.Key {
		b.WriteByte(1)
	} else {
		b.WriteByte(0)
	}
	binary.Write(&b, binary.BigEndian, m.SrcSeq)
	binary.Write(&b, binary.BigEndian, m.SrcTS)
	n := 100 + int(m.Frame*7+uint32(m.Index)*13)%500
	for i := range n {
		b.WriteByte(0x80 | byte(i+int(m.Frame)))
	}
	return b.Bytes()
}

// codecHeader is what the codec puts before its data: for VP8 the payload
// descriptor and, on a frame's first packet, the payload header (RFC
// 7741); for H.264 a STAP-A of SPS and PPS before a keyframe, then FU-A
// fragments of an IDR or non-IDR slice (RFC 6184); for Opus a TOC byte.
func codecHeader(m mediaPacket) []byte {
	switch {
	case strings.EqualFold(m.Codec, webrtc.MimeTypeVP8):
		if m.Index > 0 {
			return []byte{0x00}
		}
		if m.Key {
			return []byte{0x10, 0x00} // S=1, PID=0; P=0: key frame
		}
		return []byte{0x10, 0x01}
	case strings.EqualFold(m.Codec, webrtc.MimeTypeH264):
		if m.Key && m.Index == 0 {
			sps := []byte{0x67, 0x42, 0xe0, 0x1f, 0x8c, 0x8d, 0x40}
			pps := []byte{0x68, 0xce, 0x3c, 0x80}
			h := []byte{0x78} // STAP-A, NRI 3
			h = append(h, 0, byte(len(sps)))
			h = append(h, sps...)
			h = append(h, 0, byte(len(pps)))
			h = append(h, pps...)
			return h
		}
		nal, first, count := byte(1), uint16(0), m.Count
		if m.Key {
			nal, first, count = 5, 1, m.Count-1
		}
		fu := nal
		if m.Index == first {
			fu |= 0x80 // start
		}
		if m.Index == first+count-1 {
			fu |= 0x40 // end
		}
		return []byte{0x7c, fu} // FU-A, NRI 3
	}
	return []byte{0xfc} // Opus TOC
}

// parsePayload finds what a received payload claims to be and checks that
// it is exactly that.
func parsePayload(codec string, p []byte) (mediaPacket, error) {
	i := bytes.Index(p, blockMagic)
	if i < 0 || len(p) < i+blockSize {
		return mediaPacket{}, fmt.Errorf("no block in a payload of %d bytes", len(p))
	}
	r := bytes.NewReader(p[i+len(blockMagic) : i+blockSize])
	m := mediaPacket{Codec: codec}
	var key byte
	binary.Read(r, binary.BigEndian, &m.Run)
	binary.Read(r, binary.BigEndian, &m.Frame)
	binary.Read(r, binary.BigEndian, &m.Index)
	binary.Read(r, binary.BigEndian, &m.Count)
	binary.Read(r, binary.BigEndian, &key)
	binary.Read(r, binary.BigEndian, &m.SrcSeq)
	binary.Read(r, binary.BigEndian, &m.SrcTS)
	m.Key = key == 1
	if want := m.payload(); !bytes.Equal(p, want) {
		return m, fmt.Errorf("payload of frame %d packet %d altered: got %d bytes, want %d", m.Frame, m.Index, len(p), len(want))
	}
	return m, nil
}
