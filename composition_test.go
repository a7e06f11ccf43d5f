package ivsrt

import (
	"slices"
	"testing"
	"time"
)

func TestCompositionStreamEvent(t *testing.T) {
	c := &Composition{ARN: NewCompositionARN("us-east-1", "123456789012", "abcdABCD1234"),
		StageARN: NewStageARN("us-east-1", "123456789012", "stageABCD123")}
	at := time.Unix(1_800_000_000, 0)
	ev := NewCompositionStreamEvent(c, StreamCompositionDestinationFailure, "dest12345678", "no target", at)
	env := ev.Envelope("us-east-1", "123456789012")
	if env.DetailType != "IVS Composition State Change" || !slices.Equal(env.Resources, []string{string(c.ARN)}) {
		t.Errorf("envelope %s %v: want the composition's detail type and ARN", env.DetailType, env.Resources)
	}
	d := env.Detail
	if d["event_name"] != "Destination Failure" || d["stage_arn"] != string(c.StageARN) || d["composition_arn"] != string(c.ARN) ||
		d["destination_id"] != "dest12345678" || d["reason"] != "no target" {
		t.Errorf("detail %v", d)
	}
	if ev.StageARN != c.StageARN {
		t.Errorf("the event is filed under %s, want its stage (ordered per stage)", ev.StageARN)
	}
	start := NewCompositionStreamEvent(c, StreamCompositionSessionStart, "", "", at)
	if _, ok := start.Detail["destination_id"]; ok {
		t.Errorf("Session Start has a destination_id: %v", start.Detail)
	}
	if c.ARN.ID() != "abcdABCD1234" || CompositionARN("arn:aws:ivs:x:1:stage/abc").ID() != "" {
		t.Errorf("ID of composition ARNs")
	}
}
