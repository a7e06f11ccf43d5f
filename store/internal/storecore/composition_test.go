package storecore

import (
	"encoding/json"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/composition/layout"
)

func ptr[T any](v T) *T { return &v }

const (
	encoderA = ivsrt.EncoderConfigurationARN("arn:aws:ivs:us-east-1:123456789012:encoder-configuration/encA00000000")
	encoderB = ivsrt.EncoderConfigurationARN("arn:aws:ivs:us-east-1:123456789012:encoder-configuration/encB00000000")
	storageA = ivsrt.StorageConfigurationARN("arn:aws:ivs:us-east-1:123456789012:storage-configuration/stoA00000000")
	storageB = ivsrt.StorageConfigurationARN("arn:aws:ivs:us-east-1:123456789012:storage-configuration/stoB00000000")
	channel  = "arn:aws:ivs:us-east-1:123456789012:channel/chan00000000"
)

func TestLayoutRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		c    layout.Config
	}{
		{"none", layout.Config{}},
		{"empty grid", layout.Config{Grid: &layout.Grid{}}},
		{"grid", layout.Config{Grid: &layout.Grid{
			FeaturedParticipantAttribute: "featured",
			OmitStoppedVideo:             true,
			VideoAspectRatio:             layout.AspectPortrait,
			VideoFillMode:                layout.FillContain,
			GridGap:                      ptr(0), // 0 set is not the default
			ParticipantOrderAttribute:    "order",
		}}},
		{"pip", layout.Config{PiP: &layout.PiP{
			FeaturedParticipantAttribute: "featured",
			OmitStoppedVideo:             true,
			VideoFillMode:                layout.FillStretch,
			GridGap:                      ptr(4),
			PipParticipantAttribute:      "pip",
			PipBehavior:                  layout.PipDynamic,
			PipOffset:                    16,
			PipPosition:                  layout.PipTopLeft,
			PipWidth:                     ptr(320),
			PipHeight:                    ptr(180),
			ParticipantOrderAttribute:    "order",
		}}},
		{"pip without size", layout.Config{PiP: &layout.PiP{GridGap: ptr(0), PipBehavior: layout.PipStatic}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeLayout(tt.c)
			if err != nil {
				t.Fatalf("EncodeLayout: %v", err)
			}
			got, err := DecodeLayout(b)
			if err != nil {
				t.Fatalf("DecodeLayout(%s): %v", b, err)
			}
			if !reflect.DeepEqual(got, tt.c) {
				t.Errorf("round trip through %s: got %+v, want %+v", b, got, tt.c)
			}
		})
	}

	// Stored in the API's member names.
	b, err := EncodeLayout(layout.Config{PiP: &layout.PiP{PipWidth: ptr(320), GridGap: ptr(0)}})
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"pip":{"gridGap":0,"pipWidth":320}}`; string(b) != want {
		t.Errorf("EncodeLayout: got %s, want %s", b, want)
	}
	if _, err := DecodeLayout([]byte(`[`)); err == nil {
		t.Error("DecodeLayout of broken JSON: got no error")
	}
}

func TestDestinationsRoundTrip(t *testing.T) {
	start := time.Date(2025, time.March, 14, 15, 9, 26, 535000000, time.UTC)
	tests := []struct {
		name string
		ds   []ivsrt.CompositionDestination
	}{
		{"none", nil},
		{"channel with the default encoding", []ivsrt.CompositionDestination{{
			ID:            "dest00000001",
			State:         ivsrt.DestinationStarting,
			Configuration: ivsrt.DestinationConfiguration{Channel: &ivsrt.ChannelDestination{ChannelARN: channel}},
		}}},
		{"channel and s3", []ivsrt.CompositionDestination{
			{
				ID:        "dest00000001",
				State:     ivsrt.DestinationActive,
				StartTime: start,
				Configuration: ivsrt.DestinationConfiguration{
					Name:    "live_1-a",
					Channel: &ivsrt.ChannelDestination{ChannelARN: channel, EncoderConfigurationARN: encoderA},
				},
			},
			{
				ID:        "dest00000002",
				State:     ivsrt.DestinationStopped,
				StartTime: start,
				EndTime:   start.Add(90 * time.Second),
				Configuration: ivsrt.DestinationConfiguration{
					Name: "archive",
					S3: &ivsrt.S3Destination{
						StorageConfigurationARN:      storageA,
						EncoderConfigurationARNs:     []ivsrt.EncoderConfigurationARN{encoderB},
						TargetSegmentDurationSeconds: 2,
						Thumbnails:                   []ivsrt.CompositionThumbnail{{TargetIntervalSeconds: 86400, Storage: []string{"SEQUENTIAL", "LATEST"}}},
					},
				},
				RecordingPrefix: "stage/comp/composite",
			},
		}},
		{"s3 with defaults", []ivsrt.CompositionDestination{{
			ID:    "dest00000003",
			State: ivsrt.DestinationReconnecting,
			Configuration: ivsrt.DestinationConfiguration{S3: &ivsrt.S3Destination{
				StorageConfigurationARN:  storageB,
				EncoderConfigurationARNs: []ivsrt.EncoderConfigurationARN{encoderA},
				Thumbnails:               []ivsrt.CompositionThumbnail{{}},
			}},
		}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := EncodeDestinations(tt.ds)
			if err != nil {
				t.Fatalf("EncodeDestinations: %v", err)
			}
			if !json.Valid(b) || b[0] != '[' {
				t.Errorf("EncodeDestinations: got %s, want a JSON array", b)
			}
			got, err := DecodeDestinations(b)
			if err != nil {
				t.Fatalf("DecodeDestinations(%s): %v", b, err)
			}
			if !reflect.DeepEqual(got, tt.ds) {
				t.Errorf("round trip through %s:\ngot  %+v\nwant %+v", b, got, tt.ds)
			}
		})
	}

	t.Run("times at millisecond precision, in UTC", func(t *testing.T) {
		at := time.Date(2025, time.March, 14, 16, 9, 26, 535897932, time.FixedZone("UTC+1", 3600))
		b, err := EncodeDestinations([]ivsrt.CompositionDestination{{ID: "d", StartTime: at, EndTime: at.Add(time.Second)}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeDestinations(b)
		if err != nil {
			t.Fatal(err)
		}
		want := at.UTC().Truncate(time.Millisecond)
		if d := got[0]; !d.StartTime.Equal(want) || d.StartTime.Location() != time.UTC || !d.EndTime.Equal(want.Add(time.Second)) {
			t.Errorf("times: got %v, %v, want %v, %v", d.StartTime, d.EndTime, want, want.Add(time.Second))
		}
	})

	t.Run("empty lists come back nil", func(t *testing.T) {
		b, err := EncodeDestinations([]ivsrt.CompositionDestination{{ID: "d", Configuration: ivsrt.DestinationConfiguration{
			S3: &ivsrt.S3Destination{StorageConfigurationARN: storageA, EncoderConfigurationARNs: []ivsrt.EncoderConfigurationARN{},
				Thumbnails: []ivsrt.CompositionThumbnail{{Storage: []string{}}}},
		}}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeDestinations(b)
		if err != nil {
			t.Fatal(err)
		}
		s3 := got[0].Configuration.S3
		if s3.EncoderConfigurationARNs != nil || len(s3.Thumbnails) != 1 || s3.Thumbnails[0].Storage != nil {
			t.Errorf("got %+v, want nil lists and one thumbnail configuration", s3)
		}
		if ds, err := DecodeDestinations([]byte(`[]`)); err != nil || ds != nil {
			t.Errorf("DecodeDestinations([]): got %v, %v, want nil, nil", ds, err)
		}
	})

	if _, err := DecodeDestinations([]byte(`{}`)); err == nil {
		t.Error("DecodeDestinations of an object: got no error")
	}
}

func TestCompositionConfigurations(t *testing.T) {
	c := &ivsrt.Composition{Destinations: []ivsrt.CompositionDestination{
		{Configuration: ivsrt.DestinationConfiguration{Channel: &ivsrt.ChannelDestination{ChannelARN: channel}}},
		{Configuration: ivsrt.DestinationConfiguration{Channel: &ivsrt.ChannelDestination{ChannelARN: channel, EncoderConfigurationARN: encoderB}}},
		{Configuration: ivsrt.DestinationConfiguration{S3: &ivsrt.S3Destination{StorageConfigurationARN: storageA,
			EncoderConfigurationARNs: []ivsrt.EncoderConfigurationARN{encoderA, encoderB}}}},
		{Configuration: ivsrt.DestinationConfiguration{S3: &ivsrt.S3Destination{StorageConfigurationARN: storageA,
			EncoderConfigurationARNs: []ivsrt.EncoderConfigurationARN{encoderA}}}},
	}}
	encoders, storages := CompositionConfigurations(c)
	if want := []ivsrt.EncoderConfigurationARN{encoderB, encoderA}; !slices.Equal(encoders, want) {
		t.Errorf("encoders: got %v, want %v", encoders, want)
	}
	if want := []ivsrt.StorageConfigurationARN{storageA}; !slices.Equal(storages, want) {
		t.Errorf("storages: got %v, want %v", storages, want)
	}
	if e, s := CompositionConfigurations(&ivsrt.Composition{}); e != nil || s != nil {
		t.Errorf("of no destinations: got %v, %v, want none", e, s)
	}
}

func TestCheckCompositionFilter(t *testing.T) {
	stage := ivsrt.StageARN("arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234")
	tests := []struct {
		f    ivsrt.CompositionFilter
		want string
	}{
		{ivsrt.CompositionFilter{}, ""},
		{ivsrt.CompositionFilter{StageARN: stage}, ""},
		{ivsrt.CompositionFilter{EncoderConfigurationARN: encoderA}, ""},
		{ivsrt.CompositionFilter{StageARN: stage, EncoderConfigurationARN: encoderA}, ivsrt.EINVALID},
		{ivsrt.CompositionFilter{EncoderConfigurationARN: ivsrt.EncoderConfigurationARN(storageA)}, ivsrt.EINVALID},
	}
	for _, tt := range tests {
		if got := ivsrt.ErrorCode(CheckCompositionFilter(tt.f)); got != tt.want {
			t.Errorf("CheckCompositionFilter(%+v): got %q, want %q", tt.f, got, tt.want)
		}
	}
}
