package bot

import (
	"bytes"
	_ "embed"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/pion/webrtc/v4/pkg/media/oggreader"

	"github.com/ivsrt/ivsrt/bot/vp8"
)

// Pattern draws the test pattern bots send: colour bars, a box of the
// bot's colour sweeping across the band below them, and the frame number
// in digits, so that a viewer sees at a glance that video flows, which bot
// it is and how far it got. Frames are VP8 key frames (see package vp8).
type Pattern struct {
	Width, Height int
	Color         [3]uint8 // RGB of the box
	pic           *vp8.Picture
}

// NewPattern returns a pattern of the given size (multiples of 16, at
// least 160×96) with a box of the colour of bot number index.
func NewPattern(width, height, index int) (*Pattern, error) {
	if width < 160 || height < 96 || width%16 != 0 || height%16 != 0 || width > 1920 || height > 1088 {
		return nil, fmt.Errorf("video size %dx%d: want multiples of 16, from 160x96 to 1920x1088", width, height)
	}
	return &Pattern{Width: width, Height: height, Color: botColor(index), pic: vp8.NewPicture(width, height)}, nil
}

// botColor gives bots different, saturated colours.
func botColor(i int) [3]uint8 {
	palette := [][3]uint8{{255, 64, 64}, {64, 200, 64}, {64, 128, 255}, {255, 200, 0}, {200, 64, 255}, {0, 220, 220}, {255, 128, 0}, {255, 255, 255}}
	return palette[i%len(palette)]
}

// yuv converts an RGB colour to BT.601 limited-range Y, Cb, Cr.
func yuv(c [3]uint8) (y, u, v uint8) {
	r, g, b := float64(c[0])/255, float64(c[1])/255, float64(c[2])/255
	return uint8(16 + 65.481*r + 128.553*g + 24.966*b + 0.5),
		uint8(128 - 37.797*r - 74.203*g + 112*b + 0.5),
		uint8(128 + 112*r - 93.786*g - 18.214*b + 0.5)
}

// The colour bars, 75% as SMPTE's.
var bars = [][3]uint8{{191, 191, 191}, {191, 191, 0}, {0, 191, 191}, {0, 191, 0}, {191, 0, 191}, {191, 0, 0}, {0, 0, 191}, {16, 16, 16}}

// digits is a 3×5 font.
var digits = [10][5]string{
	{"111", "101", "101", "101", "111"}, {"010", "110", "010", "010", "111"}, {"111", "001", "111", "100", "111"},
	{"111", "001", "111", "001", "111"}, {"101", "101", "111", "001", "001"}, {"111", "100", "111", "001", "111"},
	{"111", "100", "111", "101", "111"}, {"111", "001", "001", "001", "001"}, {"111", "101", "111", "101", "111"},
	{"111", "101", "111", "001", "111"},
}

// fill paints a rectangle in pixels; x, y, w, h are multiples of 8.
func (p *Pattern) fill(x, y, w, h int, c [3]uint8) {
	cy, cu, cv := yuv(c)
	yw, cw := p.Width/4, p.Width/8
	for by := y / 4; by < (y+h)/4 && by < p.Height/4; by++ {
		for bx := x / 4; bx < (x+w)/4 && bx < yw; bx++ {
			p.pic.Y[by*yw+bx] = cy
		}
	}
	for by := y / 8; by < (y+h)/8 && by < p.Height/8; by++ {
		for bx := x / 8; bx < (x+w)/8 && bx < cw; bx++ {
			p.pic.U[by*cw+bx], p.pic.V[by*cw+bx] = cu, cv
		}
	}
}

// Frame encodes frame number n.
func (p *Pattern) Frame(n int) ([]byte, error) {
	w, h := p.Width, p.Height
	band := (h * 2 / 3) / 8 * 8
	barW := w / len(bars) / 8 * 8
	for i, c := range bars {
		bw := barW
		if i == len(bars)-1 {
			bw = w - i*barW
		}
		p.fill(i*barW, 0, bw, band, c)
	}
	p.fill(0, band, w, h-band, [3]uint8{16, 16, 16})
	// The frame number, 8-pixel cells, at the left of the band.
	cell := 8
	text := fmt.Sprintf("%05d", n%100000)
	ty := band + (h-band-5*cell)/2/8*8
	for i, ch := range text {
		glyph := digits[ch-'0']
		for row := range 5 {
			for col := range 3 {
				if glyph[row][col] == '1' {
					p.fill(8+i*4*cell+col*cell, ty+row*cell, cell, cell, [3]uint8{235, 235, 235})
				}
			}
		}
	}
	// The box sweeps right of the digits and back, 8 pixels a frame.
	size := min(40, (h-band)/8*8-8)
	left := 8 + len(text)*4*cell + 8
	span := (w - size - left) / 8
	if span > 0 {
		pos := n % (2 * span)
		if pos >= span {
			pos = 2*span - pos
		}
		p.fill(left+pos*8, band+(h-band-size)/2/8*8, size, size, p.Color)
	}
	return vp8.Encode(p.pic)
}

//go:embed tone.ogg
var toneOgg []byte

var (
	toneOnce    sync.Once
	tonePackets [][]byte
	toneErr     error
)

// Tone returns the audio bots send: one second of Opus in 20 ms packets,
// to be played in a loop — a 440 Hz tone with a short 880 Hz beep at the
// start of each second. It was encoded with libopus by gentone.py.
func Tone() ([][]byte, error) {
	toneOnce.Do(func() { tonePackets, toneErr = readOgg(toneOgg) })
	return tonePackets, toneErr
}

// readOgg returns the Opus packets of an Ogg file whose pages hold one
// packet each, as gentone.py writes them.
func readOgg(data []byte) ([][]byte, error) {
	r, _, err := oggreader.NewWith(bytes.NewReader(data))
	if err != nil {
		return nil, fmt.Errorf("read tone: %w", err)
	}
	var packets [][]byte
	for {
		payload, hdr, err := r.ParseNextPage()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("read tone: %w", err)
		}
		if hdr.GranulePosition == 0 { // OpusTags
			continue
		}
		packets = append(packets, payload)
	}
	if len(packets) == 0 {
		return nil, errors.New("read tone: no packets")
	}
	return packets, nil
}
