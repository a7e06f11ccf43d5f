package ivsrt

import (
	"fmt"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Limits of the API, from the service model and the service's documentation.
const (
	MaxStageNameLength          = 128
	MaxTagsPerResource          = 50
	MaxTagKeyLength             = 128
	MaxTagValueLength           = 256
	MaxUserIDLength             = 128
	MaxAttributesBytes          = 1024
	MaxTokenDurationMinutes     = 20160 // 14 days
	DefaultTokenDurationMinutes = 720   // 12 hours
	MaxTokenConfigurations      = 12
	MaxDisconnectReasonLength   = 128
	MaxPageSize                 = 100
	DefaultPageSize             = 50
	MaxNextTokenLength          = 1024
	MaxStageARNLength           = 128
	MaxParticipantIDLength      = 64
)

var (
	stageNamePattern     = regexp.MustCompile(`^[a-zA-Z0-9-_]*$`)
	stageARNPattern      = regexp.MustCompile(`^arn:aws:ivs:[a-z0-9-]+:[0-9]+:stage/[a-zA-Z0-9-]+$`)
	sessionIDPattern     = regexp.MustCompile(`^st-[a-zA-Z0-9]+$`)
	participantIDPattern = regexp.MustCompile(`^[a-zA-Z0-9-]*$`)
	tokenIDPattern       = regexp.MustCompile(`^[a-zA-Z0-9-_]*$`)
	nextTokenPattern     = regexp.MustCompile(`^[a-zA-Z0-9+/=_-]*$`)
	storageConfigPattern = regexp.MustCompile(`^$|^arn:aws:ivs:[a-z0-9-]+:[0-9]+:storage-configuration/[a-zA-Z0-9-]+$`)
)

// Validation collects constraint violations and words them as AWS does
// ("1 validation error detected: Value 'x' at 'name' failed to satisfy
// constraint: Member must ..."), so that messages name the field and rule.
type Validation struct {
	problems []string
}

// maxListedProblems bounds how many violations an error message spells out,
// so that a request with thousands of bad values gets a short answer.
const maxListedProblems = 10

// Err returns an EINVALID *Error describing the violations (the first
// maxListedProblems of them), or nil.
func (v *Validation) Err() error {
	switch n := len(v.problems); {
	case n == 0:
		return nil
	case n == 1:
		return Errorf(EINVALID, "1 validation error detected: %s", v.problems[0])
	case n <= maxListedProblems:
		return Errorf(EINVALID, "%d validation errors detected: %s", n, strings.Join(v.problems, "; "))
	default:
		return Errorf(EINVALID, "%d validation errors detected: %s; and %d more", n,
			strings.Join(v.problems[:maxListedProblems], "; "), n-maxListedProblems)
	}
}

// Fail records a violation in the caller's own words.
func (v *Validation) Fail(format string, args ...any) {
	v.problems = append(v.problems, fmt.Sprintf(format, args...))
}

func (v *Validation) violate(field, value, constraint string) {
	v.Fail("Value %s at '%s' failed to satisfy constraint: Member must %s", value, field, constraint)
}

func quote(s string) string {
	const shown = 64 // a huge value must not make a huge message
	if utf8.RuneCountInString(s) > shown {
		s = string([]rune(s)[:shown]) + "..."
	}
	return "'" + s + "'"
}

// Required records a violation unless present.
func (v *Validation) Required(field string, present bool) bool {
	if !present {
		v.violate(field, "null", "not be null")
	}
	return present
}

// Length checks that s has between min and max characters.
func (v *Validation) Length(field, s string, min, max int) bool {
	n := utf8.RuneCountInString(s)
	switch {
	case n < min:
		v.violate(field, quote(s), fmt.Sprintf("have length greater than or equal to %d", min))
	case n > max:
		v.violate(field, quote(s), fmt.Sprintf("have length less than or equal to %d", max))
	default:
		return true
	}
	return false
}

// Pattern checks that all of s matches re, whose source is shown as unanchored
// as the service model writes it.
func (v *Validation) Pattern(field, s string, re *regexp.Regexp) bool {
	if re.MatchString(s) {
		return true
	}
	shown := strings.TrimSuffix(strings.TrimPrefix(re.String(), "^"), "$")
	v.violate(field, quote(s), "satisfy regular expression pattern: "+shown)
	return false
}

// Range checks min <= n <= max.
func (v *Validation) Range(field string, n, min, max int) bool {
	switch {
	case n < min:
		v.violate(field, quote(fmt.Sprint(n)), fmt.Sprintf("have value greater than or equal to %d", min))
	case n > max:
		v.violate(field, quote(fmt.Sprint(n)), fmt.Sprintf("have value less than or equal to %d", max))
	default:
		return true
	}
	return false
}

// RangeFloat checks min <= f <= max for a member the model types "float",
// showing f as the shortest text that reads back as the same float32.
func (v *Validation) RangeFloat(field string, f float32, min, max float32) bool {
	show := func(x float32) string { return strconv.FormatFloat(float64(x), 'g', -1, 32) }
	switch {
	case !(f >= min): // and NaN, which no JSON number decodes to
		v.violate(field, quote(show(f)), "have value greater than or equal to "+show(min))
	case f > max:
		v.violate(field, quote(show(f)), "have value less than or equal to "+show(max))
	default:
		return true
	}
	return false
}

// Enum checks that s is one of allowed.
func (v *Validation) Enum(field, s string, allowed ...string) bool {
	for _, a := range allowed {
		if s == a {
			return true
		}
	}
	v.violate(field, quote(s), "satisfy enum value set: ["+strings.Join(allowed, ", ")+"]")
	return false
}

// StageARN checks a stage ARN.
func (v *Validation) StageARN(field, arn string) bool {
	return v.Length(field, arn, 1, MaxStageARNLength) && v.Pattern(field, arn, stageARNPattern)
}

// StageName checks a stage name.
func (v *Validation) StageName(field, name string) bool {
	return v.Length(field, name, 0, MaxStageNameLength) && v.Pattern(field, name, stageNamePattern)
}

// SessionID checks a stage session id.
func (v *Validation) SessionID(field, id string) bool {
	return v.Length(field, id, 16, 16) && v.Pattern(field, id, sessionIDPattern)
}

// ParticipantID checks a participant id as GetParticipant and the list
// operations take it.
func (v *Validation) ParticipantID(field, id string) bool {
	return v.Length(field, id, 0, MaxParticipantIDLength) && v.Pattern(field, id, participantIDPattern)
}

// TokenParticipantID checks a participant id as DisconnectParticipant takes it.
func (v *Validation) TokenParticipantID(field, id string) bool {
	return v.Length(field, id, 0, MaxParticipantIDLength) && v.Pattern(field, id, tokenIDPattern)
}

// NextToken checks the form of a pagination token; its content is checked
// by whoever decodes it.
func (v *Validation) NextToken(field, tok string) bool {
	return v.Length(field, tok, 0, MaxNextTokenLength) && v.Pattern(field, tok, nextTokenPattern)
}

// MaxResults checks a page size when one was given.
func (v *Validation) MaxResults(field string, n *int) bool {
	return n == nil || v.Range(field, *n, 1, MaxPageSize)
}

// Tags checks a tag map: its size, every key and value, reserved prefixes.
func (v *Validation) Tags(field string, tags map[string]string) bool {
	ok := true
	if len(tags) > MaxTagsPerResource {
		v.Fail("Value at '%s' failed to satisfy constraint: Member must have length less than or equal to %d", field, MaxTagsPerResource)
		ok = false
	}
	for _, k := range sortedKeys(tags) {
		ok = v.TagKey(field+".key", k) && ok
		ok = v.Length(field+".value", tags[k], 0, MaxTagValueLength) && ok
	}
	return ok
}

// TagKey checks one tag key.
func (v *Validation) TagKey(field, key string) bool {
	if !v.Length(field, key, 1, MaxTagKeyLength) {
		return false
	}
	if strings.HasPrefix(strings.ToLower(key), "aws:") {
		v.violate(field, quote(key), "not start with the reserved prefix 'aws:'")
		return false
	}
	return true
}

// TokenSettings checks what CreateParticipantToken and CreateStage's
// participantTokenConfigurations share. duration is nil when not given.
func (v *Validation) TokenSettings(prefix string, duration *int, userID string, attributes map[string]string, capabilities []string) bool {
	ok := true
	if duration != nil {
		ok = v.Range(prefix+"duration", *duration, 1, MaxTokenDurationMinutes) && ok
	}
	ok = v.Length(prefix+"userId", userID, 0, MaxUserIDLength) && ok
	ok = v.Attributes(prefix+"attributes", attributes) && ok
	if len(capabilities) > 2 {
		v.Fail("Value at '%scapabilities' failed to satisfy constraint: Member must have length less than or equal to 2", prefix)
		ok = false
	}
	for _, c := range capabilities {
		ok = v.Enum(prefix+"capabilities.member", c, string(CapabilityPublish), string(CapabilitySubscribe)) && ok
	}
	return ok
}

// Attributes checks the 1 KB total of a token's attributes (keys and values,
// in bytes of UTF-8).
func (v *Validation) Attributes(field string, attributes map[string]string) bool {
	total := 0
	for k, val := range attributes {
		total += len(k) + len(val)
	}
	if total > MaxAttributesBytes {
		v.Fail("Value at '%s' failed to satisfy constraint: Member must have a total size of keys and values less than or equal to %d bytes, got %d", field, MaxAttributesBytes, total)
		return false
	}
	return true
}

// AutoParticipantRecording checks a recording configuration.
func (v *Validation) AutoParticipantRecording(field string, r *AutoParticipantRecording) bool {
	if r == nil {
		return true
	}
	ok := v.Length(field+".storageConfigurationArn", r.StorageConfigurationARN, 0, 128) &&
		v.Pattern(field+".storageConfigurationArn", r.StorageConfigurationARN, storageConfigPattern)
	if len(r.MediaTypes) > 1 {
		v.Fail("Value at '%s.mediaTypes' failed to satisfy constraint: Member must have length less than or equal to 1", field)
		ok = false
	}
	for _, m := range r.MediaTypes {
		ok = v.Enum(field+".mediaTypes.member", m, "AUDIO_VIDEO", "AUDIO_ONLY", "NONE") && ok
	}
	ok = v.Range(field+".recordingReconnectWindowSeconds", r.RecordingReconnectWindowSeconds, 0, 300) && ok
	if r.HLSTargetSegmentDurationSeconds != 0 {
		ok = v.Range(field+".hlsConfiguration.targetSegmentDurationSeconds", r.HLSTargetSegmentDurationSeconds, 2, 10) && ok
	}
	if t := r.Thumbnail; t != nil {
		ok = v.Range(field+".thumbnailConfiguration.targetIntervalSeconds", t.TargetIntervalSeconds, 1, 86400) && ok
		if len(t.Storage) > 2 {
			v.Fail("Value at '%s.thumbnailConfiguration.storage' failed to satisfy constraint: Member must have length less than or equal to 2", field)
			ok = false
		}
		for _, s := range t.Storage {
			ok = v.Enum(field+".thumbnailConfiguration.storage.member", s, "SEQUENTIAL", "LATEST") && ok
		}
		ok = v.Enum(field+".thumbnailConfiguration.recordingMode", t.RecordingMode, "INTERVAL", "DISABLED") && ok
	}
	return ok
}

func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
