package ivsrt

import (
	"math"
	"regexp"
	"strings"
	"testing"
)

func TestEncoderConfigurationARN(t *testing.T) {
	id := NewEncoderConfigurationID()
	if !regexp.MustCompile(`^[a-zA-Z0-9]{12}$`).MatchString(id) {
		t.Errorf("NewEncoderConfigurationID: got %q, want 12 of [a-zA-Z0-9]", id)
	}
	arn := NewEncoderConfigurationARN("eu-west-1", "210987654321", id)
	if want := "arn:aws:ivs:eu-west-1:210987654321:encoder-configuration/" + id; string(arn) != want {
		t.Errorf("NewEncoderConfigurationARN: got %q, want %q", arn, want)
	}
	if got := arn.ID(); got != id {
		t.Errorf("ID: got %q, want %q", got, id)
	}
	for _, other := range []string{
		string(NewStageARN("eu-west-1", "210987654321", id)),
		string(NewStorageConfigurationARN("eu-west-1", "210987654321", id)),
		"arn:aws:ivs:eu-west-1:210987654321:encoder-configuration/",
		"arn:aws:ivs:eu-west-1:210987654321:encoder-configuration/a/b",
		"x:encoder-configuration/" + id,
	} {
		if got := EncoderConfigurationARN(other).ID(); got != "" {
			t.Errorf("ID of %q: got %q, want \"\"", other, got)
		}
	}
}

func TestDefaultVideo(t *testing.T) {
	d := DefaultVideo()
	if d != (Video{Width: 1280, Height: 720, Framerate: 30, Bitrate: 2500000}) {
		t.Errorf("DefaultVideo: got %+v, want 1280x720, 30 fps, 2500000 bps", d)
	}
	var v Validation
	if !v.Video("video", d) {
		t.Errorf("DefaultVideo does not pass its own checks: %v", v.Err())
	}
}

func TestEncoderValidation(t *testing.T) {
	video := func(change func(*Video)) Video {
		d := DefaultVideo()
		change(&d)
		return d
	}
	checkVideo := func(change func(*Video)) func(v *Validation) bool {
		return func(v *Validation) bool { return v.Video("video", video(change)) }
	}
	tests := []struct {
		name  string
		check func(v *Validation) bool
		want  string // "" when valid
	}{
		{"name", func(v *Validation) bool { return v.EncoderConfigurationName("name", "hd_1-a") }, ""},
		{"empty name", func(v *Validation) bool { return v.EncoderConfigurationName("name", "") }, ""},
		{"name pattern", func(v *Validation) bool { return v.EncoderConfigurationName("name", "a b") },
			"Value 'a b' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*"},
		{"name 129", func(v *Validation) bool { return v.EncoderConfigurationName("name", strings.Repeat("a", 129)) },
			"Member must have length less than or equal to 128"},
		{"arn", func(v *Validation) bool {
			return v.EncoderConfigurationARN("arn", "arn:aws:ivs:us-east-1:123456789012:encoder-configuration/abc-DEF")
		}, ""},
		{"arn of a stage", func(v *Validation) bool {
			return v.EncoderConfigurationARN("arn", "arn:aws:ivs:us-east-1:123456789012:stage/abc")
		}, "Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:encoder-configuration/[a-zA-Z0-9-]+"},
		{"arn empty", func(v *Validation) bool { return v.EncoderConfigurationARN("arn", "") },
			"Member must have length greater than or equal to 1"},
		{"arn 129", func(v *Validation) bool {
			return v.EncoderConfigurationARN("arn", "arn:aws:ivs:us-east-1:123456789012:encoder-configuration/"+strings.Repeat("a", 129-57))
		}, "Member must have length less than or equal to 128"},

		{"1920x1080", checkVideo(func(d *Video) { d.Width, d.Height = 1920, 1080 }), ""},
		{"1080x1920", checkVideo(func(d *Video) { d.Width, d.Height = 1080, 1920 }), ""},
		{"2x2", checkVideo(func(d *Video) { d.Width, d.Height = 2, 2 }), ""},
		{"1920x2", checkVideo(func(d *Video) { d.Width, d.Height = 1920, 2 }), ""},
		{"1440x1440", checkVideo(func(d *Video) { d.Width, d.Height = 1440, 1440 }), ""},
		{"width 0", checkVideo(func(d *Video) { d.Width = 0 }),
			"Value '0' at 'video.width' failed to satisfy constraint: Member must have value greater than or equal to 2"},
		{"width 1922", checkVideo(func(d *Video) { d.Width = 1922 }),
			"Value '1922' at 'video.width' failed to satisfy constraint: Member must have value less than or equal to 1920"},
		{"width odd", checkVideo(func(d *Video) { d.Width = 1279 }),
			"Value '1279' at 'video.width' failed to satisfy constraint: Member must be an even number"},
		{"height negative", checkVideo(func(d *Video) { d.Height = -720 }),
			"Value '-720' at 'video.height' failed to satisfy constraint: Member must have value greater than or equal to 2"},
		{"height odd", checkVideo(func(d *Video) { d.Height = 3 }), "at 'video.height' failed to satisfy constraint: Member must be an even number"},
		{"1920x1920", checkVideo(func(d *Video) { d.Width, d.Height = 1920, 1920 }),
			"Value '1920x1920' at 'video' failed to satisfy constraint: Member must have width times height less than or equal to 2073600"},
		{"default width, height 1920", checkVideo(func(d *Video) { d.Height = 1920 }),
			"Value '1280x1920' at 'video' failed to satisfy constraint: Member must have width times height less than or equal to 2073600"},
		{"1442x1440", checkVideo(func(d *Video) { d.Width, d.Height = 1442, 1440 }), "width times height"},
		{"framerate 1", checkVideo(func(d *Video) { d.Framerate = 1 }), ""},
		{"framerate 60", checkVideo(func(d *Video) { d.Framerate = 60 }), ""},
		{"framerate 29.97", checkVideo(func(d *Video) { d.Framerate = 29.97 }), ""},
		{"framerate 0.5", checkVideo(func(d *Video) { d.Framerate = 0.5 }),
			"Value '0.5' at 'video.framerate' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"framerate 60.1", checkVideo(func(d *Video) { d.Framerate = 60.1 }),
			"Value '60.1' at 'video.framerate' failed to satisfy constraint: Member must have value less than or equal to 60"},
		{"framerate NaN", checkVideo(func(d *Video) { d.Framerate = float32(math.NaN()) }), "at 'video.framerate'"},
		{"framerate +Inf", checkVideo(func(d *Video) { d.Framerate = float32(math.Inf(1)) }), "less than or equal to 60"},
		{"bitrate 1", checkVideo(func(d *Video) { d.Bitrate = 1 }), ""},
		{"bitrate 8500000", checkVideo(func(d *Video) { d.Bitrate = 8500000 }), ""},
		{"bitrate 0", checkVideo(func(d *Video) { d.Bitrate = 0 }),
			"Value '0' at 'video.bitrate' failed to satisfy constraint: Member must have value greater than or equal to 1"},
		{"bitrate 8500001", checkVideo(func(d *Video) { d.Bitrate = 8500001 }),
			"Value '8500001' at 'video.bitrate' failed to satisfy constraint: Member must have value less than or equal to 8500000"},
		{"all wrong", checkVideo(func(d *Video) { *d = Video{Width: 1, Height: 5, Framerate: 0, Bitrate: -1} }),
			"4 validation errors detected"},
		{"odd and too many pixels", checkVideo(func(d *Video) { d.Width, d.Height = 1919, 1920 }),
			"1 validation error detected: Value '1919' at 'video.width'"},

		{"resource encoder configuration", func(v *Validation) bool {
			return v.ResourceARN("resourceArn", "arn:aws:ivs:us-east-1:123456789012:encoder-configuration/abc")
		}, ""},
		{"resource channel", func(v *Validation) bool {
			return v.ResourceARN("resourceArn", "arn:aws:ivs:us-east-1:123456789012:channel/abc")
		}, " or arn:aws:ivs:[a-z0-9-]+:[0-9]+:encoder-configuration/[a-zA-Z0-9-]+"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var v Validation
			ok := tt.check(&v)
			err := v.Err()
			if ok != (tt.want == "") || (err == nil) != ok {
				t.Fatalf("got ok %v, error %v, want ok %v", ok, err, tt.want == "")
			}
			if err != nil && !strings.Contains(ErrorMessage(err), tt.want) {
				t.Errorf("message: got %q, want it to contain %q", ErrorMessage(err), tt.want)
			}
		})
	}
}
