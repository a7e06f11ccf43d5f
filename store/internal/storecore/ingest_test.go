package storecore

import (
	"slices"
	"testing"

	"github.com/ivsrt/ivsrt"
)

func TestApplyIngestUpdate(t *testing.T) {
	arn := ivsrt.NewIngestConfigurationARN("us-east-1", "123456789012", "abcdABCD1234")
	stage := ivsrt.StageARN("arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234")
	primary := ivsrt.NewIngestCredential(arn, false)
	redundant := ivsrt.NewIngestCredential(arn, true)
	on, off := true, false
	empty := ivsrt.StageARN("")
	tests := []struct {
		name      string
		creds     []ivsrt.IngestCredential
		upd       ivsrt.IngestConfigurationUpdate
		wantStage ivsrt.StageARN
		wantAdd   bool
		wantDrop  bool
		code      string
	}{
		{"nothing", []ivsrt.IngestCredential{primary}, ivsrt.IngestConfigurationUpdate{}, stage, false, false, ""},
		{"stage", []ivsrt.IngestCredential{primary}, ivsrt.IngestConfigurationUpdate{StageARN: &empty}, "", false, false, ""},
		{"redundant on", []ivsrt.IngestCredential{primary}, ivsrt.IngestConfigurationUpdate{RedundantIngest: &on}, stage, true, false, ""},
		{"redundant on again", []ivsrt.IngestCredential{primary, redundant}, ivsrt.IngestConfigurationUpdate{RedundantIngest: &on}, stage, false, false, ""},
		{"redundant off", []ivsrt.IngestCredential{primary, redundant}, ivsrt.IngestConfigurationUpdate{RedundantIngest: &off}, stage, false, true, ""},
		{"redundant off again", []ivsrt.IngestCredential{primary}, ivsrt.IngestConfigurationUpdate{RedundantIngest: &off}, stage, false, false, ""},
		{"active", []ivsrt.IngestCredential{primary, {ParticipantID: "r", Redundant: true, Active: true}},
			ivsrt.IngestConfigurationUpdate{StageARN: &empty}, stage, false, false, ivsrt.ECONFLICT},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ic := &ivsrt.IngestConfiguration{ARN: arn, StageARN: stage, Credentials: slices.Clone(tt.creds)}
			change, err := ApplyIngestUpdate(ic, tt.upd)
			if got := ivsrt.ErrorCode(err); got != tt.code {
				t.Fatalf("error: got %v, want code %q", err, tt.code)
			}
			if ic.StageARN != tt.wantStage || (change.Add != nil) != tt.wantAdd || change.RemoveRedundant != tt.wantDrop {
				t.Errorf("got stage %q, add %+v, remove %v, want %q, %v, %v", ic.StageARN, change.Add, change.RemoveRedundant,
					tt.wantStage, tt.wantAdd, tt.wantDrop)
			}
			if change.Add != nil && (!change.Add.Redundant || ic.Credentials[len(ic.Credentials)-1] != *change.Add) {
				t.Errorf("added %+v: want a redundant credential, last of %+v", change.Add, ic.Credentials)
			}
			if tt.code == "" && ic.RedundantIngest() != (tt.upd.RedundantIngest == nil && len(tt.creds) == 2 || tt.upd.RedundantIngest != nil && *tt.upd.RedundantIngest) {
				t.Errorf("credentials after the update: %+v", ic.Credentials)
			}
		})
	}
}

func TestIngestHelpers(t *testing.T) {
	arn := ivsrt.NewIngestConfigurationARN("us-east-1", "123456789012", "abcdABCD1234")
	primary, redundant := ivsrt.NewIngestCredential(arn, false), ivsrt.NewIngestCredential(arn, true)
	creds := []ivsrt.IngestCredential{redundant, primary}
	SortCredentials(creds)
	if creds[0] != primary || creds[1] != redundant {
		t.Errorf("SortCredentials: got %+v, want the primary first", creds)
	}
	ic := &ivsrt.IngestConfiguration{ARN: arn, Credentials: creds}
	for _, want := range creds {
		got, c, err := MatchStreamKey([]*ivsrt.IngestConfiguration{ic}, want.StreamKey)
		if err != nil || got != ic || c != want {
			t.Errorf("MatchStreamKey(%q): got %v, %+v, %v, want the configuration and %+v", want.StreamKey, got, c, err, want)
		}
	}
	if _, _, err := MatchStreamKey([]*ivsrt.IngestConfiguration{ic}, "rt_other"); ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
		t.Errorf("MatchStreamKey of an unknown key: got %v, want ENOTFOUND", err)
	}
	if _, _, err := MatchStreamKey(nil, primary.StreamKey); ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
		t.Errorf("MatchStreamKey of nothing read: got %v, want ENOTFOUND", err)
	}
	stage := ivsrt.StageARN("arn:aws:ivs:us-east-1:123456789012:stage/abcdABCD1234")
	active, unknown := ivsrt.IngestActive, ivsrt.IngestState("PAUSED")
	for _, tt := range []struct {
		f    ivsrt.IngestFilter
		code string
	}{
		{ivsrt.IngestFilter{}, ""},
		{ivsrt.IngestFilter{StageARN: &stage}, ""},
		{ivsrt.IngestFilter{State: &active}, ""},
		{ivsrt.IngestFilter{StageARN: &stage, State: &active}, ivsrt.EINVALID},
		{ivsrt.IngestFilter{State: &unknown}, ivsrt.EINVALID},
	} {
		if got := ivsrt.ErrorCode(CheckIngestFilter(tt.f)); got != tt.code {
			t.Errorf("CheckIngestFilter(%+v): got %q, want %q", tt.f, got, tt.code)
		}
	}
}
