// Package vp8 encodes pictures made of flat 4×4 blocks as VP8 key frames
// (RFC 6386): enough for the test patterns bots send, with no codec
// library. Every frame is a key frame, predicted with DC_PRED and coded
// with DC coefficients only (luma through the second-order Y2 block), at
// the finest quantizer and without loop filter: decoders reproduce flat
// macroblocks exactly, and blocks that differ within a macroblock to a
// level or two (the Y2 block's quantization).
package vp8

import (
	"encoding/binary"
	"errors"
)

// Picture is an image at the resolution the encoder codes: Y holds one
// value per 4×4 block of luma pixels, (Width/4)×(Height/4) row by row; U
// and V one value per 4×4 block of chroma pixels, that is per 8×8 block of
// the picture, (Width/8)×(Height/8). Width and Height are multiples of 16.
type Picture struct {
	Width, Height int
	Y, U, V       []uint8
}

// NewPicture returns a grey picture.
func NewPicture(width, height int) *Picture {
	p := &Picture{Width: width, Height: height,
		Y: make([]uint8, width/4*height/4), U: make([]uint8, width/8*height/8), V: make([]uint8, width/8*height/8)}
	for i := range p.Y {
		p.Y[i] = 128
	}
	for i := range p.U {
		p.U[i], p.V[i] = 128, 128
	}
	return p
}

// Quantizer steps of quantizer index 0 (RFC 6386, section 14.1): the Y2
// DC step is twice dc_qlookup[0] = 4, the Y2 AC step 4*155/100 raised to
// 8, the chroma DC step dc_qlookup[0].
const (
	y2DCStep = 8
	y2ACStep = 8
	uvDCStep = 4
)

// Encode codes p as one VP8 key frame.
func Encode(p *Picture) ([]byte, error) {
	frame, _, err := encode(p)
	return frame, err
}

// encode codes p and returns what a decoder reconstructs too.
func encode(p *Picture) ([]byte, *encoder, error) {
	if p.Width <= 0 || p.Height <= 0 || p.Width%16 != 0 || p.Height%16 != 0 || p.Width >= 1<<14 || p.Height >= 1<<14 {
		return nil, nil, errors.New("vp8: width and height must be positive multiples of 16")
	}
	mbw, mbh := p.Width/16, p.Height/16
	e := &encoder{p: p, mbw: mbw, mbh: mbh,
		recY: make([]int, len(p.Y)), recU: make([]int, len(p.U)), recV: make([]int, len(p.V)),
		aboveY: make([]int, mbw*4), aboveU: make([]int, mbw*2), aboveV: make([]int, mbw*2), aboveY2: make([]int, mbw)}

	// First partition: the frame header (section 9, 19.2), then each
	// macroblock's modes.
	var hdr boolEncoder
	hdr.init()
	hdr.literal(0, 1) // color_space
	hdr.literal(0, 1) // clamping_type
	hdr.literal(0, 1) // segmentation_enabled
	hdr.literal(0, 1) // filter_type
	hdr.literal(0, 6) // loop_filter_level: no loop filter
	hdr.literal(0, 3) // sharpness_level
	hdr.literal(0, 1) // loop_filter_adj_enable
	hdr.literal(0, 2) // log2_nbr_of_dct_partitions: one
	hdr.literal(0, 7) // y_ac_qi
	for range 5 {     // no quantizer deltas
		hdr.literal(0, 1)
	}
	hdr.literal(1, 1) // refresh_entropy_probs
	for i := range coeffUpdateProbs {
		for j := range coeffUpdateProbs[i] {
			for k := range coeffUpdateProbs[i][j] {
				for l := range coeffUpdateProbs[i][j][k] {
					hdr.put(false, coeffUpdateProbs[i][j][k][l])
				}
			}
		}
	}
	hdr.literal(0, 1) // mb_no_coeff_skip: every macroblock has its tokens
	for range mbw * mbh {
		// kf_ymode DC_PRED: 1, 0, 0 down the tree (section 11.2).
		hdr.put(true, kfYModeProbs[0])
		hdr.put(false, kfYModeProbs[1])
		hdr.put(false, kfYModeProbs[2])
		// kf_uv_mode DC_PRED: 0.
		hdr.put(false, kfUVModeProbs[0])
	}
	first := hdr.flush()

	// The token partition: each macroblock's coefficients.
	var tok boolEncoder
	tok.init()
	for my := range mbh {
		e.leftY, e.leftU, e.leftV, e.leftY2 = [4]int{}, [2]int{}, [2]int{}, 0
		for mx := range mbw {
			e.macroblock(&tok, mx, my)
		}
	}
	tokens := tok.flush()

	out := make([]byte, 10, 10+len(first)+len(tokens))
	// Frame tag: key frame, version 0, shown, size of the first partition.
	tag := uint32(0) | 0<<1 | 1<<4 | uint32(len(first))<<5
	out[0], out[1], out[2] = byte(tag), byte(tag>>8), byte(tag>>16)
	out[3], out[4], out[5] = 0x9d, 0x01, 0x2a
	binary.LittleEndian.PutUint16(out[6:], uint16(p.Width))
	binary.LittleEndian.PutUint16(out[8:], uint16(p.Height))
	out = append(out, first...)
	return append(out, tokens...), e, nil
}

type encoder struct {
	p                *Picture
	mbw, mbh         int
	recY, recU, recV []int // what the decoder reconstructs, per block

	// Whether neighbouring blocks had non-zero coefficients: the contexts
	// of the first token (section 13.3).
	aboveY, aboveU, aboveV, aboveY2 []int
	leftY                           [4]int
	leftU, leftV                    [2]int
	leftY2                          int
}

func clamp255(v int) int { return min(max(v, 0), 255) }

// dcPred is DC_PRED (section 12.2) of a macroblock whose edges are made of
// blocks 4 pixels long: the mean of the row above and the column to the
// left, of what is there, or 128.
func dcPred(above, left []int, haveAbove, haveLeft bool, size int) int {
	sum, shift := 0, 0
	if haveAbove {
		for _, v := range above {
			sum += 4 * v
		}
		shift++
	}
	if haveLeft {
		for _, v := range left {
			sum += 4 * v
		}
		shift++
	}
	if shift == 0 {
		return 128
	}
	log2 := 3 // 8 pixels: chroma
	if size == 16 {
		log2 = 4
	}
	shift += log2 - 1
	return (sum + 1<<(shift-1)) >> shift
}

// hadamard is the matrix of the Walsh-Hadamard transform of the Y2 block
// as the decoder computes it (section 14.3).
var hadamard = [4][4]int{{1, 1, 1, 1}, {1, 1, -1, -1}, {1, -1, -1, 1}, {1, -1, 1, -1}}

// invWalsh is the decoder's inverse WHT (section 14.3).
func invWalsh(in [16]int) [16]int {
	var t, out [16]int
	for i := range 4 {
		a1, b1 := in[i]+in[12+i], in[4+i]+in[8+i]
		c1, d1 := in[4+i]-in[8+i], in[i]-in[12+i]
		t[i], t[4+i], t[8+i], t[12+i] = a1+b1, c1+d1, a1-b1, d1-c1
	}
	for i := range 4 {
		r := t[4*i : 4*i+4]
		a1, b1 := r[0]+r[3], r[1]+r[2]
		c1, d1 := r[1]-r[2], r[0]-r[3]
		out[4*i] = (a1 + b1 + 3) >> 3
		out[4*i+1] = (c1 + d1 + 3) >> 3
		out[4*i+2] = (a1 - b1 + 3) >> 3
		out[4*i+3] = (d1 - c1 + 3) >> 3
	}
	return out
}

// quantize divides with rounding half away from zero.
func quantize(v, step int) int {
	if v < 0 {
		return -((-v + step/2) / step)
	}
	return (v + step/2) / step
}

func (e *encoder) macroblock(tok *boolEncoder, mx, my int) {
	p := e.p
	yw := p.Width / 4
	// Luma: DC_PRED of the reconstructed neighbours, then per 4×4 block
	// the difference, carried by the Y2 block.
	var above, left [4]int
	for i := range 4 {
		if my > 0 {
			above[i] = e.recY[(my*4-1)*yw+mx*4+i]
		}
		if mx > 0 {
			left[i] = e.recY[(my*4+i)*yw+mx*4-1]
		}
	}
	pred := dcPred(above[:], left[:], my > 0, mx > 0, 16)
	var d [4][4]int
	for by := range 4 {
		for bx := range 4 {
			d[by][bx] = 8 * (int(p.Y[(my*4+by)*yw+mx*4+bx]) - pred)
		}
	}
	// Y2 = H·D·H / 2, the inverse of what the decoder computes.
	var hd [4][4]int
	for i := range 4 {
		for j := range 4 {
			for k := range 4 {
				hd[i][j] += hadamard[i][k] * d[k][j]
			}
		}
	}
	var y2, deq [16]int
	for i := range 4 {
		for j := range 4 {
			s := 0
			for k := range 4 {
				s += hd[i][k] * hadamard[k][j]
			}
			step := y2ACStep
			if i == 0 && j == 0 {
				step = y2DCStep
			}
			q := quantize(s, 2*step)
			y2[i*4+j] = q
			deq[i*4+j] = q * step
		}
	}
	dc := invWalsh(deq)
	for b := range 16 {
		by, bx := b/4, b%4
		e.recY[(my*4+by)*yw+mx*4+bx] = clamp255(pred + (dc[b]+4)>>3)
	}
	var scan [16]int
	for i := range 16 {
		scan[i] = y2[zigzag[i]]
	}
	nz := tokens(tok, 1, 0, scan[:], e.aboveY2[mx]+e.leftY2)
	e.aboveY2[mx], e.leftY2 = nz, nz
	// The 16 luma blocks have no AC coefficients.
	for b := range 16 {
		by, bx := b/4, b%4
		tokens(tok, 0, 1, nil, e.aboveY[mx*4+bx]+e.leftY[by])
		e.aboveY[mx*4+bx], e.leftY[by] = 0, 0
	}
	e.chroma(tok, mx, my, p.U, e.recU, e.aboveU, &e.leftU)
	e.chroma(tok, mx, my, p.V, e.recV, e.aboveV, &e.leftV)
}

// chroma codes the four 4×4 blocks of one chroma plane of a macroblock,
// each with its DC coefficient.
func (e *encoder) chroma(tok *boolEncoder, mx, my int, plane []uint8, rec, aboveCtx []int, leftCtx *[2]int) {
	cw := e.p.Width / 8
	var above, left [2]int
	for i := range 2 {
		if my > 0 {
			above[i] = rec[(my*2-1)*cw+mx*2+i]
		}
		if mx > 0 {
			left[i] = rec[(my*2+i)*cw+mx*2-1]
		}
	}
	pred := dcPred(above[:], left[:], my > 0, mx > 0, 8)
	var blocks [4]int
	for b := range 4 {
		by, bx := b/2, b%2
		i := (my*2+by)*cw + mx*2 + bx
		q := quantize(8*(int(plane[i])-pred), uvDCStep)
		blocks[b] = q
		rec[i] = clamp255(pred + (q*uvDCStep+4)>>3)
	}
	for b := range 4 {
		by, bx := b/2, b%2
		nz := tokens(tok, 2, 0, []int{blocks[b]}, aboveCtx[mx*2+bx]+leftCtx[by])
		aboveCtx[mx*2+bx], leftCtx[by] = nz, nz
	}
}

// tokens codes the coefficients of one block, in scan order from first,
// with the default probabilities (section 13), and returns 1 if any is
// non-zero: the context its neighbours get.
func tokens(e *boolEncoder, typ, first int, coeffs []int, ctx int) int {
	last := -1
	for i := first; i < len(coeffs); i++ {
		if coeffs[i] != 0 {
			last = i
		}
	}
	if last < 0 {
		e.put(false, defaultCoeffProbs[typ][coeffBands[first]][ctx][0]) // EOB
		return 0
	}
	afterZero := false
	for i := first; i <= last; i++ {
		probs := &defaultCoeffProbs[typ][coeffBands[i]][ctx]
		if !afterZero {
			e.put(true, probs[0]) // not EOB
		}
		v := coeffs[i]
		a := max(v, -v)
		switch {
		case a == 0:
			e.put(false, probs[1])
			ctx, afterZero = 0, true
			continue
		case a == 1:
			e.put(true, probs[1])
			e.put(false, probs[2])
			ctx = 1
		default:
			e.put(true, probs[1])
			e.put(true, probs[2])
			largeToken(e, probs, a)
			ctx = 2
		}
		e.put(v < 0, 128) // sign
		afterZero = false
	}
	if last < 15 {
		e.put(false, defaultCoeffProbs[typ][coeffBands[last+1]][ctx][0]) // EOB
	}
	return 1
}

// largeToken codes a magnitude of 2 or more down the rest of the token
// tree (section 13.2: node 3 splits {2, 3, 4} from the categories, node 4
// 2 from {3, 4}, node 6 {cat1, cat2} from {cat3..cat6}), with the extra
// bits of the DCT_CAT tokens.
func largeToken(e *boolEncoder, p *[11]uint8, a int) {
	extra := func(base int, probs []uint8) {
		v := a - base
		for i, pr := range probs {
			e.put(v>>(len(probs)-1-i)&1 == 1, pr)
		}
	}
	switch {
	case a == 2:
		e.put(false, p[3])
		e.put(false, p[4])
	case a <= 4: // DCT_3, DCT_4
		e.put(false, p[3])
		e.put(true, p[4])
		e.put(a == 4, p[5])
	case a <= 10: // DCT_CAT1, DCT_CAT2
		e.put(true, p[3])
		e.put(false, p[6])
		if a <= 6 {
			e.put(false, p[7])
			extra(5, pcat1)
		} else {
			e.put(true, p[7])
			extra(7, pcat2)
		}
	default:
		e.put(true, p[3])
		e.put(true, p[6])
		switch {
		case a <= 18:
			e.put(false, p[8])
			e.put(false, p[9])
			extra(11, pcat3)
		case a <= 34:
			e.put(false, p[8])
			e.put(true, p[9])
			extra(19, pcat4)
		case a <= 66:
			e.put(true, p[8])
			e.put(false, p[10])
			extra(35, pcat5)
		default:
			e.put(true, p[8])
			e.put(true, p[10])
			extra(67, pcat6[:11])
		}
	}
}

// boolEncoder is the boolean entropy encoder of section 7.3.
type boolEncoder struct {
	out      []byte
	rng      uint32
	bottom   uint32
	bitCount int
}

func (e *boolEncoder) init() {
	e.rng, e.bottom, e.bitCount = 255, 0, 24
}

func (e *boolEncoder) addOne() {
	i := len(e.out) - 1
	for i >= 0 && e.out[i] == 255 {
		e.out[i] = 0
		i--
	}
	if i >= 0 {
		e.out[i]++
	}
}

// put codes one boolean whose probability of being false is prob/256.
func (e *boolEncoder) put(b bool, prob uint8) {
	split := 1 + ((e.rng-1)*uint32(prob))>>8
	if b {
		e.bottom += split
		e.rng -= split
	} else {
		e.rng = split
	}
	for e.rng < 128 {
		e.rng <<= 1
		if e.bottom&(1<<31) != 0 {
			e.addOne()
		}
		e.bottom <<= 1
		e.bitCount--
		if e.bitCount == 0 {
			e.out = append(e.out, byte(e.bottom>>24))
			e.bottom &= 1<<24 - 1
			e.bitCount = 8
		}
	}
}

// literal codes an n-bit unsigned value, most significant bit first.
func (e *boolEncoder) literal(v, n int) {
	for i := n - 1; i >= 0; i-- {
		e.put(v>>i&1 == 1, 128)
	}
}

func (e *boolEncoder) flush() []byte {
	c := e.bitCount
	v := e.bottom
	if v&(1<<(32-c)) != 0 {
		e.addOne()
	}
	v <<= c & 7
	for c >>= 3; c > 0; c-- {
		v <<= 8
	}
	for range 4 {
		e.out = append(e.out, byte(v>>24))
		v <<= 8
	}
	return e.out
}
