package ivsrt

import (
	"regexp"
	"strings"
	"testing"
)

func TestIngestValidation(t *testing.T) {
	const stageRule = "Member must satisfy regular expression pattern: ^$|^arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+$"
	tests := []struct {
		name  string
		check func(v *Validation) bool
		want  string // "" when valid
	}{
		{"name", func(v *Validation) bool { return v.IngestConfigurationName("name", "ingest_1-a") }, ""},
		{"empty name", func(v *Validation) bool { return v.IngestConfigurationName("name", "") }, ""},
		{"name pattern", func(v *Validation) bool { return v.IngestConfigurationName("name", "a b") },
			"Value 'a b' at 'name' failed to satisfy constraint: Member must satisfy regular expression pattern: [a-zA-Z0-9-_]*"},
		{"name 129", func(v *Validation) bool { return v.IngestConfigurationName("name", strings.Repeat("a", 129)) },
			"Member must have length less than or equal to 128"},
		{"arn", func(v *Validation) bool {
			return v.IngestConfigurationARN("arn", "arn:aws:ivs:us-east-1:123456789012:ingest-configuration/abc-DEF")
		}, ""},
		{"arn of a stage", func(v *Validation) bool {
			return v.IngestConfigurationARN("arn", "arn:aws:ivs:us-east-1:123456789012:stage/abc")
		}, "Member must satisfy regular expression pattern: arn:aws:ivs:[a-z0-9-]+:[0-9]+:ingest-configuration/[a-zA-Z0-9-]+"},
		{"arn empty", func(v *Validation) bool { return v.IngestConfigurationARN("arn", "") },
			"Member must have length greater than or equal to 1"},
		{"stage", func(v *Validation) bool {
			return v.IngestStageARN("stageArn", "arn:aws:ivs:us-east-1:123456789012:stage/abc")
		}, ""},
		{"no stage", func(v *Validation) bool { return v.IngestStageARN("stageArn", "") }, ""},
		{"stage of another kind", func(v *Validation) bool {
			return v.IngestStageARN("stageArn", "arn:aws:ivs:us-east-1:123456789012:channel/abc")
		}, "Value 'arn:aws:ivs:us-east-1:123456789012:channel/abc' at 'stageArn' failed to satisfy constraint: " + stageRule},
		{"stage 129", func(v *Validation) bool {
			return v.IngestStageARN("stageArn", "arn:aws:ivs:us-east-1:123456789012:stage/"+strings.Repeat("a", 129-41))
		}, "Member must have length less than or equal to 128"},
		{"RTMPS", func(v *Validation) bool { return v.IngestProtocol("ingestProtocol", "RTMPS", "insecureIngest", false) }, ""},
		{"RTMPS insecure", func(v *Validation) bool { return v.IngestProtocol("ingestProtocol", "RTMPS", "insecureIngest", true) }, ""},
		{"RTMP insecure", func(v *Validation) bool { return v.IngestProtocol("ingestProtocol", "RTMP", "insecureIngest", true) }, ""},
		{"RTMP secure", func(v *Validation) bool { return v.IngestProtocol("ingestProtocol", "RTMP", "insecureIngest", false) },
			"Value 'false' at 'insecureIngest' failed to satisfy constraint: Member must be true when ingestProtocol is RTMP"},
		{"protocol", func(v *Validation) bool { return v.IngestProtocol("ingestProtocol", "rtmps", "insecureIngest", false) },
			"Value 'rtmps' at 'ingestProtocol' failed to satisfy constraint: Member must satisfy enum value set: [RTMP, RTMPS]"},
		{"resource ingest configuration", func(v *Validation) bool {
			return v.ResourceARN("resourceArn", "arn:aws:ivs:us-east-1:123456789012:ingest-configuration/abc")
		}, ""},
		{"resource channel", func(v *Validation) bool {
			return v.ResourceARN("resourceArn", "arn:aws:ivs:us-east-1:123456789012:channel/abc")
		}, " or arn:aws:ivs:[a-z0-9-]+:[0-9]+:ingest-configuration/[a-zA-Z0-9-]+"},
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

func TestNewIngestCredential(t *testing.T) {
	arn := NewIngestConfigurationARN("eu-west-1", "123456789012", "AbCdEfGh1234")
	if got := arn.ID(); got != "AbCdEfGh1234" {
		t.Fatalf("ID: got %q, want AbCdEfGh1234", got)
	}
	// The model's StreamKey pattern, with the parts this server fills in.
	keyPattern := regexp.MustCompile(`^rt_123456789012_eu-west-1_AbCdEfGh1234_[a-zA-Z0-9]{32}$`)
	modelPattern := regexp.MustCompile(`^rt_[0-9]+_[a-z0-9-]+_[a-zA-Z0-9-]+_.+$`)
	idPattern := regexp.MustCompile(`^[a-zA-Z0-9]{12}$`)
	a, b := NewIngestCredential(arn, false), NewIngestCredential(arn, true)
	for _, c := range []IngestCredential{a, b} {
		if !keyPattern.MatchString(c.StreamKey) || !modelPattern.MatchString(c.StreamKey) {
			t.Errorf("stream key %q does not match %v", c.StreamKey, keyPattern)
		}
		if !idPattern.MatchString(string(c.ParticipantID)) {
			t.Errorf("participant id %q does not match %v", c.ParticipantID, idPattern)
		}
		if c.Active {
			t.Errorf("a new credential is active")
		}
	}
	if a.StreamKey == b.StreamKey || a.ParticipantID == b.ParticipantID {
		t.Errorf("two credentials share a stream key or participant id: %+v %+v", a, b)
	}
	if a.Redundant || !b.Redundant {
		t.Errorf("Redundant: got %v and %v, want false and true", a.Redundant, b.Redundant)
	}
	if IngestConfigurationARN("arn:aws:ivs:us-east-1:123456789012:stage/abc").ID() != "" {
		t.Errorf("the ID of a stage ARN as an ingest configuration's is not empty")
	}

	ic := &IngestConfiguration{Credentials: []IngestCredential{a}}
	if ic.State() != IngestInactive || ic.RedundantIngest() || ic.Primary() != a {
		t.Errorf("one inactive credential: got state %s, redundant %v, primary %+v", ic.State(), ic.RedundantIngest(), ic.Primary())
	}
	b.Active = true
	ic.Credentials = append(ic.Credentials, b)
	if ic.State() != IngestActive || !ic.RedundantIngest() || ic.Primary() != a {
		t.Errorf("an active redundant credential: got state %s, redundant %v, primary %+v", ic.State(), ic.RedundantIngest(), ic.Primary())
	}
	if c, ok := ic.Credential(b.ParticipantID); !ok || c != b {
		t.Errorf("Credential(%s): got %+v, %v, want %+v", b.ParticipantID, c, ok, b)
	}
	if _, ok := ic.Credential("nobody"); ok {
		t.Errorf("Credential of an unknown participant found one")
	}
}
