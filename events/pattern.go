package events

import (
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/ivsrt/ivsrt"
)

// Pattern keeps the events a sink wants, in the manner of an EventBridge
// rule's event pattern: a JSON object whose fields name fields of the
// envelope ("detail-type", "resources", "detail" with "event_name", ...).
// A field's value is either an object (a pattern for an object field) or
// an array of what the field may be: any of the array's elements matches.
// An element is a literal (string, number, boolean, null) or one of
//
//	{"prefix": "Participant "}
//	{"anything-but": ["Stage Created", "Stage Updated"]} (or one value)
//	{"exists": true} / {"exists": false}
//
// An array field of the envelope (resources) matches if any of its
// elements does. The zero Pattern keeps every event.
//
// Example: the publish events of one stage.
//
//	{"detail-type": ["IVS Stage Update"],
//	 "resources": ["arn:aws:ivs:us-east-1:123456789012:stage/AbCdEf123456"],
//	 "detail": {"event_name": [{"prefix": "Participant Publish"}, "Participant Unpublished"]}}
type Pattern struct {
	fields map[string]*fieldPattern
}

type fieldPattern struct {
	object   *Pattern  // the field is an object, matched by this
	matchers []matcher // or one of these matches its value
}

type matcher struct {
	literal     any // a literal, compared with ==, after JSON decoding
	isLiteral   bool
	prefix      *string
	anythingBut []any
	exists      *bool
}

// maxPatternSize limits a pattern's JSON, as EventBridge does (2048 bytes
// there; a little more room here).
const maxPatternSize = 8 << 10

// ParsePattern reads a pattern from its JSON. An empty string or "{}" is
// the pattern that keeps everything.
func ParsePattern(text string) (*Pattern, error) {
	text = strings.TrimSpace(text)
	if text == "" {
		return &Pattern{}, nil
	}
	if len(text) > maxPatternSize {
		return nil, fmt.Errorf("event pattern: longer than %d bytes", maxPatternSize)
	}
	dec := json.NewDecoder(strings.NewReader(text))
	dec.UseNumber()
	var raw map[string]any
	if err := dec.Decode(&raw); err != nil {
		return nil, fmt.Errorf("event pattern: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("event pattern: more than one JSON value")
	}
	return compilePattern(raw, "")
}

func compilePattern(raw map[string]any, path string) (*Pattern, error) {
	p := &Pattern{fields: make(map[string]*fieldPattern, len(raw))}
	for name, v := range raw {
		at := path + name
		switch v := v.(type) {
		case map[string]any:
			sub, err := compilePattern(v, at+".")
			if err != nil {
				return nil, err
			}
			p.fields[name] = &fieldPattern{object: sub}
		case []any:
			if len(v) == 0 {
				return nil, fmt.Errorf("event pattern: %s: an empty array matches nothing", at)
			}
			fp := &fieldPattern{}
			for _, el := range v {
				m, err := compileMatcher(el, at)
				if err != nil {
					return nil, err
				}
				fp.matchers = append(fp.matchers, m)
			}
			p.fields[name] = fp
		default:
			return nil, fmt.Errorf("event pattern: %s: want an object or an array of values, got %s", at, jsonText(v))
		}
	}
	return p, nil
}

func compileMatcher(el any, at string) (matcher, error) {
	obj, ok := el.(map[string]any)
	if !ok {
		if _, isArray := el.([]any); isArray {
			return matcher{}, fmt.Errorf("event pattern: %s: arrays cannot nest", at)
		}
		return matcher{literal: normalize(el), isLiteral: true}, nil
	}
	if len(obj) != 1 {
		return matcher{}, fmt.Errorf("event pattern: %s: a matcher has exactly one of prefix, anything-but, exists", at)
	}
	for op, arg := range obj {
		switch op {
		case "prefix":
			s, ok := arg.(string)
			if !ok {
				return matcher{}, fmt.Errorf("event pattern: %s: prefix takes a string", at)
			}
			return matcher{prefix: &s}, nil
		case "anything-but":
			vals, isArray := arg.([]any)
			if !isArray {
				vals = []any{arg}
			}
			var m matcher
			for _, v := range vals {
				switch v.(type) {
				case map[string]any, []any:
					return matcher{}, fmt.Errorf("event pattern: %s: anything-but takes values", at)
				}
				m.anythingBut = append(m.anythingBut, normalize(v))
			}
			return m, nil
		case "exists":
			b, ok := arg.(bool)
			if !ok {
				return matcher{}, fmt.Errorf("event pattern: %s: exists takes true or false", at)
			}
			return matcher{exists: &b}, nil
		default:
			return matcher{}, fmt.Errorf("event pattern: %s: unknown matcher %q", at, op)
		}
	}
	panic("unreachable")
}

// normalize makes JSON numbers comparable however they were written.
func normalize(v any) any {
	if n, ok := v.(json.Number); ok {
		if f, err := n.Float64(); err == nil {
			return f
		}
		return n.String()
	}
	return v
}

func jsonText(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}

// Match reports whether p keeps env.
func (p *Pattern) Match(env *ivsrt.Envelope) bool {
	if p == nil || len(p.fields) == 0 {
		return true
	}
	return p.matchObject(envelopeFields(env))
}

// MatchEvent reports whether p keeps ev as sent by region and account.
func (p *Pattern) MatchEvent(ev *ivsrt.StreamEvent, region, account string) bool {
	if p == nil || len(p.fields) == 0 {
		return true
	}
	return p.Match(ev.Envelope(region, account))
}

func envelopeFields(env *ivsrt.Envelope) map[string]any {
	resources := make([]any, len(env.Resources))
	for i, r := range env.Resources {
		resources[i] = r
	}
	detail := make(map[string]any, len(env.Detail))
	for k, v := range env.Detail {
		detail[k] = normalizeValue(v)
	}
	return map[string]any{
		"version":     env.Version,
		"id":          env.ID,
		"detail-type": env.DetailType,
		"source":      env.Source,
		"account":     env.Account,
		"time":        env.Time,
		"region":      env.Region,
		"resources":   resources,
		"detail":      detail,
	}
}

// normalizeValue turns Go numbers into float64, as decoded JSON has them.
func normalizeValue(v any) any {
	switch v := v.(type) {
	case int:
		return float64(v)
	case int64:
		return float64(v)
	case json.Number:
		return normalize(v)
	}
	return v
}

func (p *Pattern) matchObject(obj map[string]any) bool {
	for name, fp := range p.fields {
		v, present := obj[name]
		if fp.object != nil {
			sub, ok := v.(map[string]any)
			if !ok || !fp.object.matchObject(sub) {
				return false
			}
			continue
		}
		if !fp.matchValue(v, present) {
			return false
		}
	}
	return true
}

func (fp *fieldPattern) matchValue(v any, present bool) bool {
	values := []any{v}
	if arr, ok := v.([]any); ok {
		values = arr
	}
	for _, m := range fp.matchers {
		if m.exists != nil {
			if *m.exists == present {
				return true
			}
			continue
		}
		if !present {
			continue
		}
		if slices.ContainsFunc(values, m.match) {
			return true
		}
	}
	return false
}

func (m matcher) match(v any) bool {
	v = normalizeValue(v)
	switch {
	case m.isLiteral:
		return v == m.literal
	case m.prefix != nil:
		s, ok := v.(string)
		return ok && strings.HasPrefix(s, *m.prefix)
	case m.anythingBut != nil:
		return !slices.Contains(m.anythingBut, v)
	}
	return false
}
