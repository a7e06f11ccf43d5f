package storecore

import (
	"reflect"
	"testing"

	"github.com/ivsrt/ivsrt"
)

func TestRecordingRoundTrip(t *testing.T) {
	tests := []*ivsrt.AutoParticipantRecording{
		nil,
		{StorageConfigurationARN: "arn:aws:ivs:us-east-1:123456789012:storage-configuration/abc"},
		{
			StorageConfigurationARN:         "arn:aws:ivs:us-east-1:123456789012:storage-configuration/abc",
			MediaTypes:                      []string{"AUDIO_VIDEO"},
			Thumbnail:                       &ivsrt.ThumbnailConfiguration{TargetIntervalSeconds: 60, Storage: []string{"SEQUENTIAL"}, RecordingMode: "INTERVAL"},
			RecordingReconnectWindowSeconds: 30,
			HLSTargetSegmentDurationSeconds: 6,
			RecordParticipantReplicas:       true,
		},
	}
	for _, r := range tests {
		b, err := EncodeRecording(r)
		if err != nil {
			t.Fatalf("EncodeRecording(%+v): %v", r, err)
		}
		if (r == nil) != (b == nil) {
			t.Errorf("EncodeRecording(%+v): got %q, want NULL only for no configuration", r, b)
		}
		got, err := DecodeRecording(b)
		if err != nil {
			t.Fatalf("DecodeRecording(%s): %v", b, err)
		}
		if !reflect.DeepEqual(got, r) {
			t.Errorf("round trip: got %+v, want %+v", got, r)
		}
	}
}

func TestAttributes(t *testing.T) {
	b, err := EncodeAttributes(nil)
	if err != nil || string(b) != "{}" {
		t.Errorf("EncodeAttributes(nil): got %q, %v, want {}", b, err)
	}
	want := map[string]string{"role": "host"}
	if b, err = EncodeAttributes(want); err != nil {
		t.Fatal(err)
	}
	got, err := DecodeAttributes(b)
	if err != nil || !reflect.DeepEqual(got, want) {
		t.Errorf("round trip: got %v, %v, want %v", got, err, want)
	}
}
