package events

import (
	"strings"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
)

func TestPattern(t *testing.T) {
	stage := ivsrt.NewStageARN("eu-west-1", "111122223333", "AAAAAAAAAAAA")
	published := ivsrt.NewParticipantStreamEvent(&ivsrt.Event{StageARN: stage, SessionID: "st-AAAAAAAAAAAAA",
		Name: ivsrt.EventPublishStarted, ParticipantID: "pPPPPPPPPPPP", Time: time.Now()}, "alice")
	failed := ivsrt.NewParticipantStreamEvent(&ivsrt.Event{StageARN: stage, SessionID: "st-AAAAAAAAAAAAA",
		Name: ivsrt.EventPublishError, ParticipantID: "pPPPPPPPPPPP", ErrorCode: "QUOTA_EXCEEDED", Time: time.Now()}, "bob")
	created := ivsrt.NewStageStreamEvent(stage, "show", ivsrt.StreamStageCreated, time.Now())

	for _, tc := range []struct {
		pattern string
		want    [3]bool // published, failed, created
	}{
		{``, [3]bool{true, true, true}},
		{`{}`, [3]bool{true, true, true}},
		{`{"detail-type": ["IVS Stage Update"]}`, [3]bool{true, true, false}},
		{`{"source": ["aws.ivs"], "account": ["111122223333"], "region": ["eu-west-1"]}`, [3]bool{true, true, true}},
		{`{"region": ["us-east-1"]}`, [3]bool{false, false, false}},
		{`{"resources": ["` + string(stage) + `"]}`, [3]bool{true, true, true}},
		{`{"resources": [{"prefix": "arn:aws:ivs:eu-west-1:"}]}`, [3]bool{true, true, true}},
		{`{"resources": ["arn:aws:ivs:eu-west-1:111122223333:stage/BBBBBBBBBBBB"]}`, [3]bool{false, false, false}},
		{`{"detail": {"event_name": ["Participant Published", "Stage Created"]}}`, [3]bool{true, false, true}},
		{`{"detail": {"event_name": [{"prefix": "Participant Publish"}]}}`, [3]bool{true, true, false}},
		{`{"detail": {"event_name": [{"anything-but": ["Participant Published"]}]}}`, [3]bool{false, true, true}},
		{`{"detail": {"event_name": [{"anything-but": "Stage Created"}]}}`, [3]bool{true, true, false}},
		{`{"detail": {"error_code": [{"exists": true}]}}`, [3]bool{false, true, false}},
		{`{"detail": {"error_code": [{"exists": false}]}}`, [3]bool{true, false, true}},
		{`{"detail": {"user_id": ["alice"]}, "detail-type": ["IVS Stage Update"]}`, [3]bool{true, false, false}},
		{`{"detail": {"missing": {"deeper": ["x"]}}}`, [3]bool{false, false, false}},
		{`{"detail": {"user_id": [null]}}`, [3]bool{false, false, false}},
	} {
		p, err := ParsePattern(tc.pattern)
		if err != nil {
			t.Errorf("ParsePattern(%s): %v", tc.pattern, err)
			continue
		}
		for i, ev := range []*ivsrt.StreamEvent{published, failed, created} {
			if got := p.MatchEvent(ev, "eu-west-1", "111122223333"); got != tc.want[i] {
				t.Errorf("%s on %s: got %v, want %v", tc.pattern, ev.EventName(), got, tc.want[i])
			}
		}
	}
}

func TestParsePatternRefuses(t *testing.T) {
	for _, bad := range []string{
		`[]`, `"x"`, `{"a": "x"}`, `{"a": 1}`, `{"a": []}`, `{"a": [[1]]}`,
		`{"a": [{"prefix": 1}]}`, `{"a": [{"exists": "yes"}]}`, `{"a": [{"suffix": "x"}]}`,
		`{"a": [{"prefix": "x", "exists": true}]}`, `{"a": [{"anything-but": [{"prefix": "x"}]}]}`,
		`{"a": ["x"]} {}`, `{`, `{"a": ["` + strings.Repeat("x", 9000) + `"]}`,
	} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("ParsePattern(%.60s): no error", bad)
		}
	}
}

func FuzzParsePattern(f *testing.F) {
	f.Add(`{"detail": {"event_name": [{"prefix": "P"}, "x", 1, true, null]}, "resources": [{"anything-but": ["a", 2]}]}`)
	f.Add(`{"a": [{"exists": false}]}`)
	env := ivsrt.NewStageStreamEvent(ivsrt.NewStageARN("eu-west-1", "111122223333", "AAAAAAAAAAAA"), "s", ivsrt.StreamStageCreated, time.Now())
	f.Fuzz(func(t *testing.T, text string) {
		p, err := ParsePattern(text)
		if err != nil {
			return
		}
		p.MatchEvent(env, "eu-west-1", "111122223333") // must not panic
	})
}
