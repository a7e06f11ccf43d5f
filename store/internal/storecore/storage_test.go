package storecore

import (
	"testing"

	"github.com/ivsrt/ivsrt"
)

func TestKindOf(t *testing.T) {
	tests := []struct {
		arn  string
		want ResourceKind
	}{
		{"arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234", StageResource},
		{"arn:aws:ivs:us-east-1:123456789012:storage-configuration/abcdABCD1234", StorageConfigurationResource},
		{"arn:aws:ivs:us-east-1:123456789012:public-key/abcdABCD1234", PublicKeyResource},
		{"arn:aws:ivs:us-east-1:123456789012:ingest-configuration/abcdABCD1234", IngestConfigurationResource},
		{"arn:aws:ivs:us-east-1:123456789012:channel/abcdABCD1234", UnknownResource},
		{"arn:aws:ivs:us-east-1:123456789012:encoder-configuration/abcdABCD1234", EncoderConfigurationResource},
		{"arn:aws:ivs:us-east-1:123456789012:composition/abcdABCD1234", CompositionResource},
		{"arn:aws:ivs:us-east-1:123456789012:composition/", UnknownResource},
		{"", UnknownResource},
	}
	for _, tt := range tests {
		if got := KindOf(tt.arn); got != tt.want {
			t.Errorf("KindOf(%q): got %v, want %v", tt.arn, got, tt.want)
		}
	}
}

func TestRecordingStorage(t *testing.T) {
	const arn = "arn:aws:ivs:us-east-1:123456789012:storage-configuration/abcdABCD1234"
	tests := []struct {
		rec  *ivsrt.AutoParticipantRecording
		want ivsrt.StorageConfigurationARN
	}{
		{nil, ""},
		{&ivsrt.AutoParticipantRecording{}, ""},
		{&ivsrt.AutoParticipantRecording{StorageConfigurationARN: arn}, arn},
	}
	for _, tt := range tests {
		if got := RecordingStorage(tt.rec); got != tt.want {
			t.Errorf("RecordingStorage(%+v): got %q, want %q", tt.rec, got, tt.want)
		}
	}
}
