package forward

import "testing"

// vp8Desc is a payload starting with a descriptor carrying a 15-bit
// picture ID and a TL0PICIDX.
func vp8Desc(pid uint16, tl0 uint8) []byte {
	return []byte{0x90, 0xc0, 0x80 | byte(pid>>8), byte(pid), tl0, 0xaa}
}

func pidOf(t *testing.T, p []byte) (uint16, uint8) {
	t.Helper()
	at, n, tl0At, ok := vp8Fields(p)
	if !ok || n != 2 || tl0At < 0 {
		t.Fatalf("descriptor %x: no 15-bit picture ID and TL0PICIDX", p)
	}
	return uint16(p[at]&0x7f)<<8 | uint16(p[at+1]), p[tl0At]
}

func TestVP8PictureIDsFollowOn(t *testing.T) {
	var m vp8Munger
	for i := range uint16(3) {
		in := vp8Desc(100+i, 7)
		if out := m.rewrite(in, i == 0, i == 0); &out[0] != &in[0] {
			t.Fatalf("the first stream's payloads are copied: want them forwarded as they are")
		}
	}
	// A switch to another layer's keyframe, whose encoder counts from
	// elsewhere: the IDs follow on from the last sent.
	out := m.rewrite(vp8Desc(31000, 200), true, true)
	if pid, tl0 := pidOf(t, out); pid != 103 || tl0 != 8 {
		t.Errorf("after the switch: picture ID %d TL0PICIDX %d, want 103 and 8", pid, tl0)
	}
	if pid, _ := pidOf(t, m.rewrite(vp8Desc(31001, 200), false, false)); pid != 104 {
		t.Errorf("the next frame: %d, want 104", pid)
	}
	// Across the 15-bit wrap of the input.
	m2 := vp8Munger{}
	m2.rewrite(vp8Desc(10, 0), true, true)
	m2.rewrite(vp8Desc(0x7fff, 0), true, true)
	if pid, _ := pidOf(t, m2.rewrite(vp8Desc(0, 0), false, false)); pid != 12 {
		t.Errorf("across the wrap: %d, want 12", pid)
	}
	// A retransmission is sent as it was the first time.
	if pid, _ := pidOf(t, m.translate(vp8Desc(31001, 200))); pid != 104 {
		t.Errorf("retransmission: %d, want 104", pid)
	}
	// A keyframe that breaks the count within the stream (the encoder
	// restarted) is rebased too; one that continues it is not.
	if pid, _ := pidOf(t, m.rewrite(vp8Desc(31002, 200), true, false)); pid != 105 {
		t.Errorf("a keyframe in sequence: %d, want 105", pid)
	}
	if pid, _ := pidOf(t, m.rewrite(vp8Desc(3, 0), true, false)); pid != 106 {
		t.Errorf("a keyframe out of sequence: %d, want 106", pid)
	}
}

func FuzzVP8Munger(f *testing.F) {
	f.Add([]byte{0x90, 0xc0, 0x81, 0x02, 0x03}, true, true)
	f.Add([]byte{0x90, 0x80, 0x12}, false, true)
	f.Fuzz(func(t *testing.T, p []byte, key, fresh bool) {
		var m vp8Munger
		out := m.rewrite(p, key, fresh)
		if len(out) != len(p) {
			t.Fatalf("length changed")
		}
		m.translate(p)
	})
}
