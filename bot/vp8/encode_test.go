package vp8

import (
	"encoding/binary"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// libwebpDecode decodes a key frame with libwebp's VP8 decoder (through
// python3's ctypes, so that the test needs no cgo) and returns the
// decoded planes: Y, U and V, row after row. It skips the test when
// python3 or libwebp (Debian: libwebp7) is missing.
func libwebpDecode(t *testing.T, frame []byte, width, height int) (y, u, v []byte) {
	t.Helper()
	python, err := exec.LookPath("python3")
	if err != nil {
		t.Skip("python3 is not installed: no decoder to check the frames with")
	}
	// A WebP file is a VP8 key frame in a RIFF chunk.
	chunk := append([]byte(nil), frame...)
	if len(chunk)%2 == 1 {
		chunk = append(chunk, 0)
	}
	var b []byte
	b = append(b, "RIFF"...)
	b = binary.LittleEndian.AppendUint32(b, uint32(4+8+len(chunk)))
	b = append(b, "WEBPVP8 "...)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(frame)))
	b = append(b, chunk...)
	dir := t.TempDir()
	in, out := filepath.Join(dir, "frame.webp"), filepath.Join(dir, "planes")
	if err := os.WriteFile(in, b, 0o644); err != nil {
		t.Fatal(err)
	}
	const script = `
import ctypes, ctypes.util, sys
name = ctypes.util.find_library("webp") or "libwebp.so.7"
try:
    lib = ctypes.CDLL(name)
except OSError:
    sys.exit(3)
data = open(sys.argv[1], "rb").read()
w, h, ys, uvs = ctypes.c_int(), ctypes.c_int(), ctypes.c_int(), ctypes.c_int()
u, v = ctypes.POINTER(ctypes.c_uint8)(), ctypes.POINTER(ctypes.c_uint8)()
lib.WebPDecodeYUV.restype = ctypes.POINTER(ctypes.c_uint8)
y = lib.WebPDecodeYUV(data, len(data), ctypes.byref(w), ctypes.byref(h), ctypes.byref(u), ctypes.byref(v), ctypes.byref(ys), ctypes.byref(uvs))
if not y:
    sys.exit(4)
W, H = w.value, h.value
out = bytearray()
for r in range(H):
    out += bytes(y[r * ys.value + c] for c in range(W))
for plane in (u, v):
    for r in range((H + 1) // 2):
        out += bytes(plane[r * uvs.value + c] for c in range((W + 1) // 2))
open(sys.argv[2], "wb").write(out)
`
	cmd := exec.Command(python, "-c", script, in, out)
	msg, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok && ee.ExitCode() == 3 {
		t.Skip("libwebp is not installed: no decoder to check the frames with")
	}
	if err != nil {
		t.Fatalf("libwebp could not decode the frame: %v %s", err, msg)
	}
	planes, err := os.ReadFile(out)
	if err != nil {
		t.Fatal(err)
	}
	ys, cs := width*height, width/2*height/2
	if len(planes) != ys+2*cs {
		t.Fatalf("decoded %d bytes, want %d for %dx%d", len(planes), ys+2*cs, width, height)
	}
	return planes[:ys], planes[ys : ys+cs], planes[ys+cs:]
}

// checkDecoded compares decoded planes, pixel by pixel, with what the
// encoder reconstructed (exactly: encoder and decoder must agree, or
// predictions drift) and with the picture (within tolerance).
func checkDecoded(t *testing.T, p *Picture, e *encoder, tolerance int, y, u, v []byte) {
	t.Helper()
	bad := 0
	check := func(plane string, got []byte, want []uint8, rec []int, width int) {
		for i, g := range got {
			x, row := i%width, i/width
			cell := row/4*(width/4) + x/4
			if int(g) != rec[cell] || abs(int(g)-int(want[cell])) > tolerance {
				if bad < 5 {
					t.Errorf("%s pixel (%d, %d): got %d, encoder's reconstruction %d, picture %d", plane, x, row, g, rec[cell], want[cell])
				}
				bad++
			}
		}
	}
	check("Y", y, p.Y, e.recY, p.Width)
	check("U", u, p.U, e.recU, p.Width/2)
	check("V", v, p.V, e.recV, p.Width/2)
	if bad > 0 {
		t.Errorf("%d pixels differ", bad)
	}
}

func abs(v int) int { return max(v, -v) }

// TestEncodeDecodes encodes pictures whose blocks take every value and
// every difference to their neighbours (so every token of the coefficient
// tree), and checks a real decoder reproduces them exactly.
func TestEncodeDecodes(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tt := range []struct {
		name          string
		width, height int
		tolerance     int // of the decoded picture to p
		fill          func(p *Picture)
	}{
		{"grey", 16, 16, 0, func(p *Picture) {}},
		{"random", 96, 64, 2, func(p *Picture) {
			for _, plane := range [][]uint8{p.Y, p.U, p.V} {
				for i := range plane {
					plane[i] = uint8(rng.IntN(256))
				}
			}
		}},
		{"small steps", 128, 48, 2, func(p *Picture) {
			for _, plane := range [][]uint8{p.Y, p.U, p.V} {
				for i := range plane {
					plane[i] = uint8(128 + rng.IntN(25) - 12)
				}
			}
		}},
		{"extremes", 64, 64, 2, func(p *Picture) {
			for _, plane := range [][]uint8{p.Y, p.U, p.V} {
				for i := range plane {
					plane[i] = uint8(255 * rng.IntN(2))
				}
			}
		}},
		{"flat macroblocks", 320, 240, 0, func(p *Picture) {
			for i := range p.Y {
				p.Y[i] = uint8(16 + (i%(p.Width/4))/4*7 + i/(p.Width/4)/4*3)
			}
			for i := range p.U {
				p.U[i], p.V[i] = uint8(40+(i%(p.Width/8))/2*5), uint8(220-(i/(p.Width/8))/2*5)
			}
		}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			p := NewPicture(tt.width, tt.height)
			tt.fill(p)
			frame, e, err := encode(p)
			if err != nil {
				t.Fatal(err)
			}
			if frame[0]&1 != 0 || string(frame[3:6]) != "\x9d\x01\x2a" {
				t.Fatalf("frame starts % x, want a key frame", frame[:10])
			}
			y, u, v := libwebpDecode(t, frame, tt.width, tt.height)
			checkDecoded(t, p, e, tt.tolerance, y, u, v)
		})
	}
}

func TestEncodeRejectsSizes(t *testing.T) {
	for _, size := range [][2]int{{0, 16}, {17, 16}, {16, 8}, {16384, 16}} {
		p := &Picture{Width: size[0], Height: size[1]}
		if _, err := Encode(p); err == nil || !strings.Contains(err.Error(), "multiples of 16") {
			t.Errorf("Encode %dx%d: got %v, want an error about the size", size[0], size[1], err)
		}
	}
}

// FuzzEncode encodes any picture without a panic, into a key frame.
func FuzzEncode(f *testing.F) {
	f.Add(uint8(1), uint8(1), []byte{0, 255, 128})
	f.Fuzz(func(t *testing.T, w, h uint8, data []byte) {
		p := NewPicture(16*(1+int(w%8)), 16*(1+int(h%8)))
		for i := range p.Y {
			if len(data) > 0 {
				p.Y[i] = data[i%len(data)]
			}
		}
		frame, err := Encode(p)
		if err != nil || len(frame) < 10 || frame[0]&1 != 0 {
			t.Fatalf("Encode: %v (%d bytes)", err, len(frame))
		}
	})
}
