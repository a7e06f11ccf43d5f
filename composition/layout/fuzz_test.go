package layout

import (
	"encoding/binary"
	"fmt"
	"reflect"
	"slices"
	"testing"
)

// FuzzArrange feeds Arrange any configuration, canvas and participants: it
// must never panic, must refuse only what is invalid, and what it returns
// must keep every promise of a Scene (even rectangles inside the canvas,
// pictures inside their slots, crops inside their videos, no two tiles of a
// layer overlapping, no one both shown and hidden) and not depend on the
// order of the input.
func FuzzArrange(f *testing.F) {
	f.Add(uint16(1280), uint16(720), false, int16(-1), uint8(0), uint8(0), uint8(0), uint8(0), int16(0), int16(0), int16(0),
		[]byte("\x01\x00\x00\x05\xd0\x02\x00\x01\x00\x00\x05\xd0\x02\x01"))
	f.Add(uint16(720), uint16(1280), true, int16(3), uint8(1), uint8(2), uint8(3), uint8(1), int16(17), int16(0), int16(0),
		[]byte("\x1f\x05\x81\x02\x01\x03\x00\x0b\xfe\xe1\x01\x69\x03\x01\x03\x01\x40\x00\x40\x00\x07"))
	f.Add(uint16(2), uint16(2), false, int16(0), uint8(3), uint8(1), uint8(0), uint8(0), int16(0), int16(0), int16(0),
		slices.Repeat([]byte("\x01\x00\x00\x05\xd0\x02\x00"), 14))
	f.Add(uint16(1920), uint16(1080), true, int16(10), uint8(0), uint8(3), uint8(2), uint8(2), int16(5000), int16(5000), int16(1),
		slices.Repeat([]byte("\x0d\xff\xff\xff\x01\x00\x02"), 13))

	aspects := []AspectRatio{"", AspectAuto, AspectVideo, AspectSquare, AspectPortrait, "WIDE"}
	fills := []FillMode{"", FillStretch, FillCover, FillContain, "cover"}
	positions := []PipPosition{"", PipTopLeft, PipTopRight, PipBottomLeft, PipBottomRight, "CENTER"}
	behaviors := []PipBehavior{"", PipStatic, PipDynamic, "FLOAT"}

	f.Fuzz(func(t *testing.T, width, height uint16, pip bool, gap int16, aspect, fill, position, behavior uint8,
		offset, pipWidth, pipHeight int16, data []byte) {
		canvas := Size{Width: int(width), Height: int(height)}
		cfg := Config{Grid: &Grid{
			FeaturedParticipantAttribute: "featured",
			ParticipantOrderAttribute:    "order",
			OmitStoppedVideo:             gap%3 == 0,
			VideoAspectRatio:             aspects[int(aspect)%len(aspects)],
			VideoFillMode:                fills[int(fill)%len(fills)],
		}}
		if gap != -1 { // -1 leaves it to the default
			cfg.Grid.GridGap = intp(int(gap))
		}
		if pip {
			p := &PiP{
				FeaturedParticipantAttribute: "featured",
				PipParticipantAttribute:      "pip",
				ParticipantOrderAttribute:    "order",
				OmitStoppedVideo:             cfg.Grid.OmitStoppedVideo,
				VideoFillMode:                cfg.Grid.VideoFillMode,
				GridGap:                      cfg.Grid.GridGap,
				PipPosition:                  positions[int(position)%len(positions)],
				PipBehavior:                  behaviors[int(behavior)%len(behaviors)],
				PipOffset:                    int(offset),
			}
			if aspect%2 == 0 { // even leaves the PiP participant unmarked
				p.PipParticipantAttribute = ""
			}
			if pipWidth != 0 {
				p.PipWidth = intp(int(pipWidth))
			}
			if pipHeight != 0 {
				p.PipHeight = intp(int(pipHeight))
			}
			cfg = Config{PiP: p}
		}
		ps := fuzzParticipants(data)

		s, err := Arrange(cfg, canvas, ps)
		_, cfgErr := cfg.WithDefaults()
		canvasErr := checkCanvas(canvas)
		if (err != nil) != (cfgErr != nil || canvasErr != nil) {
			t.Fatalf("Arrange: %v, but the configuration's check gave %v and the canvas's %v", err, cfgErr, canvasErr)
		}
		if err != nil {
			return
		}
		if err := sceneProblem(s, ps); err != nil {
			t.Fatalf("%v\nconfig %+v %+v\ncanvas %v\nscene %+v", err, cfg.Grid, cfg.PiP, canvas, s)
		}
		reversed := slices.Clone(ps)
		slices.Reverse(reversed)
		again, err := Arrange(cfg, canvas, reversed)
		if err != nil || !reflect.DeepEqual(s, again) {
			t.Fatalf("reversed input gave %+v, %v; want %+v", again, err, s)
		}
	})
}

// fuzzParticipants makes up to 20 participants of 7 bytes each: flags, an
// order value, width and height (little-endian; odd, zero or absurd ones
// included) and a join order, small so that ties are common.
func fuzzParticipants(data []byte) []Participant {
	var ps []Participant
	for i := 0; len(data) >= 7 && i < 20; i++ {
		flags, order := data[0], int8(data[1])
		p := Participant{
			ID:             fmt.Sprintf("p%d", i),
			Attributes:     map[string]string{},
			PublishesVideo: flags&0x01 != 0,
			VideoStopped:   flags&0x02 != 0,
			VideoWidth:     int(binary.LittleEndian.Uint16(data[2:])),
			VideoHeight:    int(binary.LittleEndian.Uint16(data[4:])),
			JoinOrder:      int64(data[6] % 4),
		}
		if flags&0x04 != 0 {
			p.Attributes["featured"] = "true"
		}
		if flags&0x08 != 0 {
			p.Attributes["pip"] = "true"
		}
		switch flags >> 4 & 0x03 {
		case 1:
			p.Attributes["order"] = fmt.Sprint(order)
		case 2:
			p.Attributes["order"] = "not a number"
		}
		ps = append(ps, p)
		data = data[7:]
	}
	return ps
}
