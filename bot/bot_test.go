package bot

import (
	"bytes"
	"encoding/base64"
	"strings"
	"testing"
)

func TestTone(t *testing.T) {
	packets, err := Tone()
	if err != nil {
		t.Fatal(err)
	}
	if len(packets) != 50 {
		t.Fatalf("got %d packets, want 50 (one second of 20 ms)", len(packets))
	}
	for i, p := range packets {
		// TOC byte (RFC 6716, section 3.1): a 20 ms frame of any mode
		// (configs 1, 3, 5, 7, 9, 11, 13, 15, 19, 23, 27, 31 are 20 ms).
		config := p[0] >> 3
		if len(p) < 2 || !bytes.Contains([]byte{1, 3, 5, 7, 9, 11, 13, 15, 19, 23, 27, 31}, []byte{config}) {
			t.Errorf("packet %d: TOC %#x (config %d), %d bytes: want a 20 ms Opus frame", i, p[0], config, len(p))
		}
	}
}

func TestPattern(t *testing.T) {
	if _, err := NewPattern(100, 100, 0); err == nil {
		t.Error("NewPattern(100, 100): no error, want one for a size that is not a multiple of 16")
	}
	p, err := NewPattern(320, 240, 2)
	if err != nil {
		t.Fatal(err)
	}
	var prev []byte
	for n := range 3 {
		f, err := p.Frame(n)
		if err != nil {
			t.Fatal(err)
		}
		if f[0]&1 != 0 || string(f[3:6]) != "\x9d\x01\x2a" || f[6] != 320&0xff || f[7] != 320>>8 || f[8] != 240 {
			t.Errorf("frame %d starts % x, want a 320x240 key frame", n, f[:10])
		}
		if bytes.Equal(f, prev) {
			t.Errorf("frame %d is frame %d again, want the box and the number to move", n, n-1)
		}
		prev = f
	}
}

func TestKeyframeStart(t *testing.T) {
	for _, tt := range []struct {
		mime string
		p    []byte
		want bool
	}{
		{"video/VP8", []byte{0x10, 0x00}, true},                                            // S, PID 0, P clear
		{"video/VP8", []byte{0x10, 0x01}, false},                                           // inter frame
		{"video/VP8", []byte{0x00, 0x00}, false},                                           // not the start of a frame
		{"video/VP8", []byte{0x90, 0x80, 0x81, 0x23, 0x00}, true},                          // X, I with 15-bit picture id
		{"video/H264", []byte{0x65, 0x88}, true},                                           // IDR
		{"video/H264", []byte{0x41, 0x9a}, false},                                          // non-IDR
		{"video/H264", []byte{0x78, 0x00, 0x02, 0x67, 0x42, 0x00, 0x02, 0x68, 0xce}, true}, // STAP-A with SPS
		{"video/H264", []byte{0x7c, 0x85}, true},                                           // FU-A start of an IDR
		{"video/H264", []byte{0x7c, 0x05}, false},                                          // FU-A middle
		{"audio/opus", []byte{0x78}, false},
	} {
		if got := keyframeStart(tt.mime, tt.p); got != tt.want {
			t.Errorf("keyframeStart(%s, % x) got %v, want %v", tt.mime, tt.p, got, tt.want)
		}
	}
}

func TestReadClaims(t *testing.T) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"jti":"Ab3dE5gH7jK9","resource":"arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234",
		"events_url":"ws://127.0.0.1:7870/events","whip_url":"http://127.0.0.1:7870/whip","user_id":"bot",
		"capabilities":{"allow_publish":true,"allow_subscribe":false}}`))
	c, err := readClaims("e30." + payload + ".c2ln")
	if err != nil {
		t.Fatal(err)
	}
	if c.ParticipantID != "Ab3dE5gH7jK9" || c.WHIPURL != "http://127.0.0.1:7870/whip" || !c.Capabilities.Publish || c.Capabilities.Subscribe {
		t.Errorf("claims got %+v", c)
	}
	for _, tok := range []string{"", "a.b", "e30.!!!.c2ln", "e30." + base64.RawURLEncoding.EncodeToString([]byte(`{"jti":"x"}`)) + ".c2ln"} {
		if _, err := readClaims(tok); err == nil {
			t.Errorf("readClaims(%q): no error, want one", tok)
		}
	}
	if _, err := New(Config{Token: "nope"}); err == nil || !strings.Contains(err.Error(), "JWT") {
		t.Errorf("New with a bad token: got %v, want an error about the JWT", err)
	}
}
