package layout

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

func intp(v int) *int { return &v }

func TestConfigDefaults(t *testing.T) {
	tests := []struct {
		name string
		in   Config
		want Config
	}{
		{
			name: "nothing set is a grid with every default",
			in:   Config{},
			want: Config{Grid: &Grid{VideoAspectRatio: AspectVideo, GridGap: intp(2)}},
		},
		{
			name: "an empty grid",
			in:   Config{Grid: &Grid{}},
			want: Config{Grid: &Grid{VideoAspectRatio: AspectVideo, GridGap: intp(2)}},
		},
		{
			name: "a grid keeps what is set, a gap of 0 included",
			in: Config{Grid: &Grid{FeaturedParticipantAttribute: "screen-share", OmitStoppedVideo: true,
				VideoAspectRatio: AspectSquare, VideoFillMode: FillContain, GridGap: intp(0), ParticipantOrderAttribute: "seat_1"}},
			want: Config{Grid: &Grid{FeaturedParticipantAttribute: "screen-share", OmitStoppedVideo: true,
				VideoAspectRatio: AspectSquare, VideoFillMode: FillContain, GridGap: intp(0), ParticipantOrderAttribute: "seat_1"}},
		},
		{
			name: "an empty pip",
			in:   Config{PiP: &PiP{}},
			want: Config{PiP: &PiP{VideoFillMode: FillCover, GridGap: intp(0), PipBehavior: PipStatic, PipPosition: PipBottomRight}},
		},
		{
			name: "a pip keeps what is set",
			in: Config{PiP: &PiP{FeaturedParticipantAttribute: "host", OmitStoppedVideo: true, VideoFillMode: FillStretch,
				GridGap: intp(6), PipParticipantAttribute: "guest", PipBehavior: PipDynamic, PipOffset: 10,
				PipPosition: PipTopLeft, PipWidth: intp(1), PipHeight: intp(400), ParticipantOrderAttribute: "order"}},
			want: Config{PiP: &PiP{FeaturedParticipantAttribute: "host", OmitStoppedVideo: true, VideoFillMode: FillStretch,
				GridGap: intp(6), PipParticipantAttribute: "guest", PipBehavior: PipDynamic, PipOffset: 10,
				PipPosition: PipTopLeft, PipWidth: intp(1), PipHeight: intp(400), ParticipantOrderAttribute: "order"}},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := tt.in.WithDefaults()
			if err != nil {
				t.Fatalf("WithDefaults: %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				gotJSON, _ := json.Marshal(got)
				wantJSON, _ := json.Marshal(tt.want)
				t.Errorf("got %s, want %s", gotJSON, wantJSON)
			}
		})
	}
}

func TestConfigValidation(t *testing.T) {
	long := strings.Repeat("a", 129)
	tests := []struct {
		name      string
		in        Config
		wantField string
		wantIn    string // a part of the message
	}{
		{"both layouts", Config{Grid: &Grid{}, PiP: &PiP{}}, "layout", "not both"},
		{"grid featured attribute too long", Config{Grid: &Grid{FeaturedParticipantAttribute: long}}, "grid.featuredParticipantAttribute", "at most 128"},
		{"grid featured attribute with a space", Config{Grid: &Grid{FeaturedParticipantAttribute: "screen share"}}, "grid.featuredParticipantAttribute", "letters, digits"},
		{"grid order attribute with a dot", Config{Grid: &Grid{ParticipantOrderAttribute: "a.b"}}, "grid.participantOrderAttribute", `"a.b"`},
		{"grid aspect ratio unknown", Config{Grid: &Grid{VideoAspectRatio: "WIDE"}}, "grid.videoAspectRatio", `"WIDE"`},
		{"grid aspect ratio in lower case", Config{Grid: &Grid{VideoAspectRatio: "video"}}, "grid.videoAspectRatio", "AUTO, VIDEO, SQUARE, PORTRAIT"},
		{"grid fill mode unknown", Config{Grid: &Grid{VideoFillMode: "STRETCH"}}, "grid.videoFillMode", "FILL, COVER, CONTAIN"},
		{"grid gap negative", Config{Grid: &Grid{GridGap: intp(-1)}}, "grid.gridGap", "got -1"},
		{"pip featured attribute too long", Config{PiP: &PiP{FeaturedParticipantAttribute: long}}, "pip.featuredParticipantAttribute", "at most 128"},
		{"pip participant attribute", Config{PiP: &PiP{PipParticipantAttribute: "gäst"}}, "pip.pipParticipantAttribute", "letters, digits"},
		{"pip order attribute", Config{PiP: &PiP{ParticipantOrderAttribute: "x y"}}, "pip.participantOrderAttribute", "letters, digits"},
		{"pip fill mode unknown", Config{PiP: &PiP{VideoFillMode: "cover"}}, "pip.videoFillMode", `"cover"`},
		{"pip gap negative", Config{PiP: &PiP{GridGap: intp(-4)}}, "pip.gridGap", "0 or more"},
		{"pip behavior unknown", Config{PiP: &PiP{PipBehavior: "FLOATING"}}, "pip.pipBehavior", "STATIC or DYNAMIC"},
		{"pip position unknown", Config{PiP: &PiP{PipPosition: "CENTER"}}, "pip.pipPosition", "TOP_LEFT"},
		{"pip offset negative", Config{PiP: &PiP{PipOffset: -2}}, "pip.pipOffset", "got -2"},
		{"pip width zero", Config{PiP: &PiP{PipWidth: intp(0)}}, "pip.pipWidth", "1 or more, got 0"},
		{"pip height negative", Config{PiP: &PiP{PipHeight: intp(-10)}}, "pip.pipHeight", "1 or more, got -10"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := tt.in.WithDefaults()
			var fe *FieldError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a *FieldError", err)
			}
			if fe.Field != tt.wantField || !strings.Contains(fe.Message, tt.wantIn) {
				t.Errorf("got %q, want field %s and a message with %q", err, tt.wantField, tt.wantIn)
			}
		})
	}
}

func TestAttributeKeyLimits(t *testing.T) {
	// The longest key and every allowed character pass.
	keys := []string{"", strings.Repeat("z", 128), "Az09-_"}
	for _, key := range keys {
		if _, err := (Grid{FeaturedParticipantAttribute: key, ParticipantOrderAttribute: key}).WithDefaults(); err != nil {
			t.Errorf("grid key %q: got %v, want no error", key, err)
		}
		if _, err := (PiP{PipParticipantAttribute: key}).WithDefaults(); err != nil {
			t.Errorf("pip key %q: got %v, want no error", key, err)
		}
	}
}

func TestConfigJSON(t *testing.T) {
	// The JSON tags are the API's member names, so the api package can
	// decode a StartComposition layout straight into a Config.
	const body = `{"pip":{"featuredParticipantAttribute":"host","omitStoppedVideo":true,"videoFillMode":"CONTAIN",
		"gridGap":0,"pipParticipantAttribute":"guest","pipBehavior":"DYNAMIC","pipOffset":8,
		"pipPosition":"TOP_RIGHT","pipWidth":320,"pipHeight":180,"participantOrderAttribute":"order"}}`
	var c Config
	if err := json.Unmarshal([]byte(body), &c); err != nil {
		t.Fatal(err)
	}
	want := Config{PiP: &PiP{FeaturedParticipantAttribute: "host", OmitStoppedVideo: true, VideoFillMode: FillContain,
		GridGap: intp(0), PipParticipantAttribute: "guest", PipBehavior: PipDynamic, PipOffset: 8,
		PipPosition: PipTopRight, PipWidth: intp(320), PipHeight: intp(180), ParticipantOrderAttribute: "order"}}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got %+v, want %+v", *c.PiP, *want.PiP)
	}

	var g Config
	if err := json.Unmarshal([]byte(`{"grid":{"gridGap":0,"videoAspectRatio":"AUTO"}}`), &g); err != nil {
		t.Fatal(err)
	}
	g, err := g.WithDefaults()
	if err != nil {
		t.Fatal(err)
	}
	if *g.Grid.GridGap != 0 {
		t.Errorf("an explicit gridGap of 0: got %d, want 0", *g.Grid.GridGap)
	}
}
