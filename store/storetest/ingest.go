package storetest

import (
	"fmt"
	"maps"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
)

func newIngestARN() ivsrt.IngestConfigurationARN {
	return ivsrt.NewIngestConfigurationARN("us-east-1", "123456789012", ivsrt.NewIngestConfigurationID())
}

// newIngest returns an ingest configuration of stage, not stored, with a
// primary credential and, if redundant, a redundant one.
func newIngest(name string, stage ivsrt.StageARN, redundant bool) *ivsrt.IngestConfiguration {
	arn := newIngestARN()
	ic := &ivsrt.IngestConfiguration{
		ARN:         arn,
		Name:        name,
		StageARN:    stage,
		UserID:      "encoder-" + name,
		Attributes:  map[string]string{"role": "camera"},
		Protocol:    ivsrt.IngestRTMPS,
		Credentials: []ivsrt.IngestCredential{ivsrt.NewIngestCredential(arn, false)},
	}
	if redundant {
		ic.Credentials = append(ic.Credentials, ivsrt.NewIngestCredential(arn, true))
	}
	return ic
}

// createIngest stores an ingest configuration as newIngest makes it.
func (e *env) createIngest(t *testing.T, name string, stage ivsrt.StageARN, redundant bool) *ivsrt.IngestConfiguration {
	t.Helper()
	ic := newIngest(name, stage, redundant)
	if err := e.s.CreateIngestConfiguration(e.ctx, ic); err != nil {
		t.Fatalf("CreateIngestConfiguration: %v", err)
	}
	return ic
}

func (e *env) getIngest(t *testing.T, arn ivsrt.IngestConfigurationARN) *ivsrt.IngestConfiguration {
	t.Helper()
	return fetch(t, e, "GetIngestConfiguration", e.s.GetIngestConfiguration, arn)
}

func (e *env) setIngestActive(t *testing.T, ic *ivsrt.IngestConfiguration, c ivsrt.IngestCredential, active bool) {
	t.Helper()
	if err := e.s.SetIngestActive(e.ctx, ic.ARN, c.ParticipantID, active); err != nil {
		t.Fatalf("SetIngestActive %s %v: %v", c.ParticipantID, active, err)
	}
}

func ingestARNs(ics []*ivsrt.IngestConfiguration) []ivsrt.IngestConfigurationARN {
	arns := make([]ivsrt.IngestConfigurationARN, len(ics))
	for i, ic := range ics {
		arns[i] = ic.ARN
	}
	return arns
}

func checkIngest(t *testing.T, what string, got, want *ivsrt.IngestConfiguration) {
	t.Helper()
	if got.ARN != want.ARN || got.Name != want.Name || got.StageARN != want.StageARN || got.UserID != want.UserID ||
		got.Protocol != want.Protocol || got.InsecureIngest != want.InsecureIngest {
		t.Errorf("%s: got %s %q stage %q user %q %s insecure %v, want %s %q stage %q user %q %s insecure %v", what,
			got.ARN, got.Name, got.StageARN, got.UserID, got.Protocol, got.InsecureIngest,
			want.ARN, want.Name, want.StageARN, want.UserID, want.Protocol, want.InsecureIngest)
	}
	wantAttrs := want.Attributes
	if wantAttrs == nil {
		wantAttrs = map[string]string{}
	}
	if got.Attributes == nil || !maps.Equal(got.Attributes, wantAttrs) {
		t.Errorf("%s: Attributes: got %v, want %v", what, got.Attributes, wantAttrs)
	}
	if !slices.Equal(got.Credentials, want.Credentials) {
		t.Errorf("%s: Credentials: got %+v, want %+v", what, got.Credentials, want.Credentials)
	}
	checkTags(t, what+": Tags", got.Tags, want.Tags)
	if got.Tags == nil {
		t.Errorf("%s: Tags: got nil, want a map", what)
	}
	checkTime(t, what+": CreatedAt", got.CreatedAt, want.CreatedAt)
	checkTime(t, what+": UpdatedAt", got.UpdatedAt, want.UpdatedAt)
}

// stored is ic as the store returns it: nil tags an empty map, times at
// the store's precision.
func stored(ic *ivsrt.IngestConfiguration) *ivsrt.IngestConfiguration {
	c := *ic
	c.Credentials = slices.Clone(ic.Credentials)
	c.Tags = maps.Clone(ic.Tags)
	if c.Tags == nil {
		c.Tags = map[string]string{}
	}
	return &c
}

func testIngestConfiguration(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	created := e.clock.Now()
	st := e.createStage(t, "ingest", nil)
	ic := newIngest("camera_1-a", st.ARN, true)
	ic.InsecureIngest = true
	ic.Protocol = ivsrt.IngestRTMP
	ic.Tags = map[string]string{"team": "video", "empty": ""}
	if err := e.s.CreateIngestConfiguration(e.ctx, ic); err != nil {
		t.Fatalf("CreateIngestConfiguration: %v", err)
	}
	checkTime(t, "CreatedAt set by CreateIngestConfiguration", ic.CreatedAt, created)
	checkTime(t, "UpdatedAt set by CreateIngestConfiguration", ic.UpdatedAt, created)
	want := stored(ic)
	checkIngest(t, "GetIngestConfiguration", e.getIngest(t, ic.ARN), want)
	if got := e.getIngest(t, ic.ARN); got.State() != ivsrt.IngestInactive || !got.RedundantIngest() {
		t.Errorf("a new configuration: got state %s, redundant %v, want INACTIVE, true", got.State(), got.RedundantIngest())
	}

	// Without a stage, attributes or tags.
	bare := &ivsrt.IngestConfiguration{ARN: newIngestARN(), Protocol: ivsrt.IngestRTMPS}
	bare.Credentials = []ivsrt.IngestCredential{ivsrt.NewIngestCredential(bare.ARN, false)}
	if err := e.s.CreateIngestConfiguration(e.ctx, bare); err != nil {
		t.Fatalf("CreateIngestConfiguration without stage, attributes or tags: %v", err)
	}
	checkIngest(t, "GetIngestConfiguration of the bare one", e.getIngest(t, bare.ARN), stored(bare))

	// Tags go through the tag methods of every resource.
	checkTags(t, "ListTags", e.listIngestTags(t, ic.ARN), want.Tags)
	if err := e.s.TagResource(e.ctx, string(ic.ARN), map[string]string{"added": "1", "team": "audio"}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	if err := e.s.UntagResource(e.ctx, string(ic.ARN), []string{"empty", "absent"}); err != nil {
		t.Fatalf("UntagResource: %v", err)
	}
	want.Tags = map[string]string{"team": "audio", "added": "1"}
	checkTags(t, "ListTags after tagging", e.listIngestTags(t, ic.ARN), want.Tags)
	checkIngest(t, "GetIngestConfiguration after tagging", e.getIngest(t, ic.ARN), want)
	checkTags(t, "tags of the stage", e.listTags(t, st.ARN), map[string]string{})

	// Keys find their configuration and say which credential they are.
	for _, c := range ic.Credentials {
		got, cred, err := e.s.IngestByStreamKey(e.ctx, c.StreamKey)
		if err != nil {
			t.Fatalf("IngestByStreamKey: %v", err)
		}
		checkIngest(t, "IngestByStreamKey", got, want)
		if cred != c {
			t.Errorf("IngestByStreamKey: credential: got %+v, want %+v", cred, c)
		}
	}
	for _, key := range []string{"", "rt_123456789012_us-east-1_unknown_secret", ic.Credentials[0].StreamKey + "x",
		ic.Credentials[0].StreamKey[:len(ic.Credentials[0].StreamKey)-1]} {
		_, _, err := e.s.IngestByStreamKey(e.ctx, key)
		wantCode(t, fmt.Sprintf("IngestByStreamKey(%q)", key), err, ivsrt.ENOTFOUND)
	}

	// No two configurations share an ARN, a participant or a key, and a
	// refused one leaves nothing behind.
	e.clock.Advance(time.Second)
	dup := newIngest("dup", "", false)
	dup.ARN = ic.ARN
	wantCode(t, "CreateIngestConfiguration with an existing ARN", e.s.CreateIngestConfiguration(e.ctx, dup), ivsrt.ECONFLICT)
	sameKey := newIngest("same-key", "", false)
	sameKey.Credentials[0].StreamKey = ic.Credentials[1].StreamKey
	sameKey.Tags = map[string]string{"x": "y"}
	wantCode(t, "CreateIngestConfiguration with an existing stream key", e.s.CreateIngestConfiguration(e.ctx, sameKey), ivsrt.ECONFLICT)
	_, err := e.s.GetIngestConfiguration(e.ctx, sameKey.ARN)
	wantCode(t, "GetIngestConfiguration of the refused one", err, ivsrt.ENOTFOUND)
	_, err = e.s.ListTags(e.ctx, string(sameKey.ARN))
	wantCode(t, "ListTags of the refused one", err, ivsrt.ENOTFOUND)
	samePID := newIngest("same-participant", "", false)
	samePID.Credentials[0].ParticipantID = ic.Credentials[0].ParticipantID
	wantCode(t, "CreateIngestConfiguration with an existing participant", e.s.CreateIngestConfiguration(e.ctx, samePID), ivsrt.ECONFLICT)
	checkIngest(t, "GetIngestConfiguration after the refusals", e.getIngest(t, ic.ARN), want)

	// Deleting removes the credentials and tags; the stage stays.
	if err := e.s.DeleteIngestConfiguration(e.ctx, ic.ARN, false); err != nil {
		t.Fatalf("DeleteIngestConfiguration: %v", err)
	}
	_, err = e.s.GetIngestConfiguration(e.ctx, ic.ARN)
	wantCode(t, "GetIngestConfiguration after delete", err, ivsrt.ENOTFOUND)
	_, _, err = e.s.IngestByStreamKey(e.ctx, ic.Credentials[0].StreamKey)
	wantCode(t, "IngestByStreamKey after delete", err, ivsrt.ENOTFOUND)
	e.checkGone(t, string(ic.ARN), []string{"a"}, "DeleteIngestConfiguration", func() error { return e.s.DeleteIngestConfiguration(e.ctx, ic.ARN, false) })
	wantCode(t, "DeleteIngestConfiguration again with force", e.s.DeleteIngestConfiguration(e.ctx, ic.ARN, true), ivsrt.ENOTFOUND)
	wantCode(t, "SetIngestActive after delete", e.s.SetIngestActive(e.ctx, ic.ARN, ic.Credentials[0].ParticipantID, true), ivsrt.ENOTFOUND)
	e.getStage(t, st.ARN)
	checkIngest(t, "the other configuration", e.getIngest(t, bare.ARN), stored(bare))

	// Its keys and participants may be used again.
	reborn := newIngest("reborn", "", false)
	reborn.Credentials[0] = ic.Credentials[0]
	if err := e.s.CreateIngestConfiguration(e.ctx, reborn); err != nil {
		t.Fatalf("CreateIngestConfiguration with a deleted one's credential: %v", err)
	}
}

func (e *env) listIngestTags(t *testing.T, arn ivsrt.IngestConfigurationARN) map[string]string {
	t.Helper()
	tags, err := e.s.ListTags(e.ctx, string(arn))
	if err != nil {
		t.Fatalf("ListTags: %v", err)
	}
	return tags
}

func testListIngestConfigurations(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	list := func(f ivsrt.IngestFilter) func(ivsrt.Page) ([]*ivsrt.IngestConfiguration, string, error) {
		return func(p ivsrt.Page) ([]*ivsrt.IngestConfiguration, string, error) {
			return e.s.ListIngestConfigurations(e.ctx, f, p)
		}
	}
	ingests := listing[*ivsrt.IngestConfiguration, ivsrt.IngestConfigurationARN]{op: "ListIngestConfigurations", noun: "ingest configuration",
		list:  list(ivsrt.IngestFilter{}),
		arn:   func(ic *ivsrt.IngestConfiguration) ivsrt.IngestConfigurationARN { return ic.ARN },
		check: checkIngest}
	ingests.checkEmpty(t)
	// Stages and storage configurations are not ingest configurations.
	a, b := e.createStage(t, "a", nil), e.createStage(t, "b", nil)
	e.createStorage(t, "not-listed", nil)
	var all []*ivsrt.IngestConfiguration
	stageOf := []ivsrt.StageARN{a.ARN, b.ARN, "", a.ARN, a.ARN, b.ARN, ""}
	for i, stage := range stageOf {
		e.clock.Advance(time.Second)
		ic := newIngest(fmt.Sprintf("ic-%d", i), stage, i%2 == 0)
		if i%3 != 0 {
			ic.Tags = map[string]string{"n": fmt.Sprint(i), "m": "x"}
		}
		if err := e.s.CreateIngestConfiguration(e.ctx, ic); err != nil {
			t.Fatalf("CreateIngestConfiguration: %v", err)
		}
		all = append(all, stored(ic))
	}
	// Active: 1 by its primary credential, 4 by its redundant one.
	e.setIngestActive(t, all[1], all[1].Credentials[0], true)
	all[1].Credentials[0].Active = true
	e.setIngestActive(t, all[4], all[4].Credentials[1], true)
	all[4].Credentials[1].Active = true

	pick := func(idx ...int) []*ivsrt.IngestConfiguration {
		var out []*ivsrt.IngestConfiguration
		for _, i := range idx {
			out = append(out, all[i])
		}
		return out
	}
	active, inactive := ivsrt.IngestActive, ivsrt.IngestInactive
	tests := []struct {
		name   string
		filter ivsrt.IngestFilter
		want   []*ivsrt.IngestConfiguration
	}{
		{"all", ivsrt.IngestFilter{}, all},
		{"stage a", ivsrt.IngestFilter{StageARN: &a.ARN}, pick(0, 3, 4)},
		{"stage b", ivsrt.IngestFilter{StageARN: &b.ARN}, pick(1, 5)},
		{"unknown stage", ivsrt.IngestFilter{StageARN: ptr(newARN())}, nil},
		{"active", ivsrt.IngestFilter{State: &active}, pick(1, 4)},
		{"inactive", ivsrt.IngestFilter{State: &inactive}, pick(0, 2, 3, 5, 6)},
	}
	for _, tt := range tests {
		for _, limit := range []int{1, 2, 3, ivsrt.MaxPageSize} {
			t.Run(fmt.Sprintf("%s limit %d", tt.name, limit), func(t *testing.T) {
				pages := paginate(t, limit, list(tt.filter))
				wantPages := max(1, (len(tt.want)+limit-1)/limit)
				if len(pages) != wantPages {
					t.Errorf("pages: got %v, want %d pages", sizes(pages), wantPages)
				}
				got := flatten(pages)
				if !slices.Equal(ingestARNs(got), ingestARNs(tt.want)) {
					t.Fatalf("ingest configurations: got %v, want %v", ingestARNs(got), ingestARNs(tt.want))
				}
				for i := range got {
					checkIngest(t, fmt.Sprintf("ingest configuration %d", i), got[i], tt.want[i])
				}
			})
		}
	}

	unknown := ivsrt.IngestState("SLEEPING")
	for _, f := range []ivsrt.IngestFilter{{StageARN: &a.ARN, State: &active}, {State: &unknown}} {
		_, _, err := e.s.ListIngestConfigurations(e.ctx, f, ivsrt.Page{Limit: 10})
		wantCode(t, fmt.Sprintf("ListIngestConfigurations with filter %+v", f), err, ivsrt.EINVALID)
	}
	for _, page := range []ivsrt.Page{{Limit: 0}, {After: "!not a position!", Limit: 10}} {
		_, _, err := e.s.ListIngestConfigurations(e.ctx, ivsrt.IngestFilter{}, page)
		wantCode(t, fmt.Sprintf("ListIngestConfigurations of page %+v", page), err, ivsrt.EINVALID)
	}

	t.Run("changed between pages", func(t *testing.T) {
		ingests.checkChangedBetweenPages(t, all,
			func(arn ivsrt.IngestConfigurationARN) error { return e.s.DeleteIngestConfiguration(e.ctx, arn, false) },
			func(t *testing.T) *ivsrt.IngestConfiguration { return e.createIngest(t, "added", "", false) })
	})
}

func testUpdateIngestConfiguration(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	a, b := e.createStage(t, "a", nil), e.createStage(t, "b", nil)
	ic := e.createIngest(t, "camera", a.ARN, false)
	want := stored(ic)

	// Nothing to change changes nothing but the time.
	updated := e.clock.Advance(time.Second)
	got, err := e.s.UpdateIngestConfiguration(e.ctx, ic.ARN, ivsrt.IngestConfigurationUpdate{})
	if err != nil {
		t.Fatalf("UpdateIngestConfiguration without changes: %v", err)
	}
	want.UpdatedAt = updated
	checkIngest(t, "UpdateIngestConfiguration without changes", got, want)

	updated = e.clock.Advance(time.Second)
	got, err = e.s.UpdateIngestConfiguration(e.ctx, ic.ARN, ivsrt.IngestConfigurationUpdate{StageARN: &b.ARN})
	if err != nil {
		t.Fatalf("UpdateIngestConfiguration of the stage: %v", err)
	}
	want.StageARN, want.UpdatedAt = b.ARN, updated
	checkIngest(t, "UpdateIngestConfiguration of the stage", got, want)
	checkIngest(t, "GetIngestConfiguration after the update", e.getIngest(t, ic.ARN), want)

	// Redundant ingest on: a second credential, of the configuration's
	// key form, with a participant of its own.
	got, err = e.s.UpdateIngestConfiguration(e.ctx, ic.ARN, ivsrt.IngestConfigurationUpdate{RedundantIngest: ptr(true)})
	if err != nil {
		t.Fatalf("UpdateIngestConfiguration redundant on: %v", err)
	}
	if len(got.Credentials) != 2 || got.Credentials[0] != want.Credentials[0] || !got.Credentials[1].Redundant ||
		got.Credentials[1].Active || got.Credentials[1].ParticipantID == "" || got.Credentials[1].ParticipantID == got.Credentials[0].ParticipantID {
		t.Fatalf("credentials with redundant ingest: got %+v, want the primary %+v and a new redundant one", got.Credentials, want.Credentials[0])
	}
	redundant := got.Credentials[1]
	if prefix := "rt_123456789012_us-east-1_" + ic.ARN.ID() + "_"; len(redundant.StreamKey) <= len(prefix) ||
		redundant.StreamKey[:len(prefix)] != prefix || redundant.StreamKey == want.Credentials[0].StreamKey {
		t.Errorf("redundant stream key %q: want a new one starting %q", redundant.StreamKey, prefix)
	}
	want.Credentials = got.Credentials
	want.UpdatedAt = e.clock.Now()
	checkIngest(t, "GetIngestConfiguration with redundant ingest", e.getIngest(t, ic.ARN), want)
	if _, cred, err := e.s.IngestByStreamKey(e.ctx, redundant.StreamKey); err != nil || cred != redundant {
		t.Errorf("IngestByStreamKey of the redundant key: got %+v, %v, want %+v", cred, err, redundant)
	}

	// On again keeps it; the stage may be taken away.
	got, err = e.s.UpdateIngestConfiguration(e.ctx, ic.ARN, ivsrt.IngestConfigurationUpdate{RedundantIngest: ptr(true), StageARN: ptr(ivsrt.StageARN(""))})
	if err != nil {
		t.Fatalf("UpdateIngestConfiguration redundant on again: %v", err)
	}
	want.StageARN = ""
	checkIngest(t, "UpdateIngestConfiguration redundant on again", got, want)

	// Off removes it, and its key finds nothing.
	got, err = e.s.UpdateIngestConfiguration(e.ctx, ic.ARN, ivsrt.IngestConfigurationUpdate{RedundantIngest: ptr(false)})
	if err != nil {
		t.Fatalf("UpdateIngestConfiguration redundant off: %v", err)
	}
	want.Credentials = want.Credentials[:1]
	checkIngest(t, "UpdateIngestConfiguration redundant off", got, want)
	checkIngest(t, "GetIngestConfiguration without redundant ingest", e.getIngest(t, ic.ARN), want)
	_, _, err = e.s.IngestByStreamKey(e.ctx, redundant.StreamKey)
	wantCode(t, "IngestByStreamKey of the removed key", err, ivsrt.ENOTFOUND)
	got, err = e.s.UpdateIngestConfiguration(e.ctx, ic.ARN, ivsrt.IngestConfigurationUpdate{RedundantIngest: ptr(false)})
	if err != nil {
		t.Fatalf("UpdateIngestConfiguration redundant off again: %v", err)
	}
	checkIngest(t, "UpdateIngestConfiguration redundant off again", got, want)

	_, err = e.s.UpdateIngestConfiguration(e.ctx, newIngestARN(), ivsrt.IngestConfigurationUpdate{StageARN: &a.ARN})
	wantCode(t, "UpdateIngestConfiguration of an unknown one", err, ivsrt.ENOTFOUND)
}

func testIngestActive(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	st := e.createStage(t, "live", nil)
	ic := e.createIngest(t, "camera", st.ARN, true)
	primary, redundant := ic.Credentials[0], ic.Credentials[1]
	state := func() ivsrt.IngestState { return e.getIngest(t, ic.ARN).State() }

	e.setIngestActive(t, ic, primary, true)
	if got := state(); got != ivsrt.IngestActive {
		t.Fatalf("state with the primary publishing: got %s, want ACTIVE", got)
	}
	_, err := e.s.UpdateIngestConfiguration(e.ctx, ic.ARN, ivsrt.IngestConfigurationUpdate{StageARN: ptr(ivsrt.StageARN(""))})
	wantCode(t, "UpdateIngestConfiguration while active", err, ivsrt.ECONFLICT)
	_, err = e.s.UpdateIngestConfiguration(e.ctx, ic.ARN, ivsrt.IngestConfigurationUpdate{})
	wantCode(t, "UpdateIngestConfiguration without changes while active", err, ivsrt.ECONFLICT)
	wantCode(t, "DeleteIngestConfiguration while active", e.s.DeleteIngestConfiguration(e.ctx, ic.ARN, false), ivsrt.ECONFLICT)
	if got := e.getIngest(t, ic.ARN); got.StageARN != st.ARN || !got.RedundantIngest() {
		t.Errorf("after the refused changes: got stage %q, redundant %v, want %q, true", got.StageARN, got.RedundantIngest(), st.ARN)
	}

	// Either credential makes it ACTIVE; both stopped, INACTIVE.
	e.setIngestActive(t, ic, redundant, true)
	e.setIngestActive(t, ic, primary, false)
	if got := e.getIngest(t, ic.ARN); got.State() != ivsrt.IngestActive || got.Credentials[0].Active || !got.Credentials[1].Active {
		t.Fatalf("with the redundant one publishing: got state %s, credentials %+v", got.State(), got.Credentials)
	}
	e.setIngestActive(t, ic, redundant, false)
	e.setIngestActive(t, ic, redundant, false) // again: no change, no error
	if got := state(); got != ivsrt.IngestInactive {
		t.Fatalf("state with nobody publishing: got %s, want INACTIVE", got)
	}
	if _, err := e.s.UpdateIngestConfiguration(e.ctx, ic.ARN, ivsrt.IngestConfigurationUpdate{RedundantIngest: ptr(false)}); err != nil {
		t.Fatalf("UpdateIngestConfiguration once inactive: %v", err)
	}
	wantCode(t, "SetIngestActive of the removed credential", e.s.SetIngestActive(e.ctx, ic.ARN, redundant.ParticipantID, true), ivsrt.ENOTFOUND)
	wantCode(t, "SetIngestActive of another configuration's participant",
		e.s.SetIngestActive(e.ctx, e.createIngest(t, "other", "", false).ARN, primary.ParticipantID, true), ivsrt.ENOTFOUND)
	wantCode(t, "SetIngestActive of an unknown configuration", e.s.SetIngestActive(e.ctx, newIngestARN(), primary.ParticipantID, true), ivsrt.ENOTFOUND)

	// Force deletes it while active.
	e.setIngestActive(t, ic, primary, true)
	if err := e.s.DeleteIngestConfiguration(e.ctx, ic.ARN, true); err != nil {
		t.Fatalf("DeleteIngestConfiguration with force: %v", err)
	}
	_, err = e.s.GetIngestConfiguration(e.ctx, ic.ARN)
	wantCode(t, "GetIngestConfiguration after a forced delete", err, ivsrt.ENOTFOUND)
	wantCode(t, "SetIngestActive after a forced delete", e.s.SetIngestActive(e.ctx, ic.ARN, primary.ParticipantID, false), ivsrt.ENOTFOUND)
}

func testDetachIngest(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	a, b := e.createStage(t, "a", nil), e.createStage(t, "b", nil)

	ic := e.createIngest(t, "camera", a.ARN, true)
	other := e.createIngest(t, "other", a.ARN, false)
	wantCode(t, "DetachIngestParticipant in another stage",
		e.s.DetachIngestParticipant(e.ctx, b.ARN, ic.Credentials[0].ParticipantID), ivsrt.ENOTFOUND)
	wantCode(t, "DetachIngestParticipant of a participant of no configuration",
		e.s.DetachIngestParticipant(e.ctx, a.ARN, ivsrt.NewParticipantID()), ivsrt.ENOTFOUND)
	wantCode(t, "DetachIngestParticipant of no stage",
		e.s.DetachIngestParticipant(e.ctx, "", ic.Credentials[0].ParticipantID), ivsrt.ENOTFOUND)
	// The redundant participant detaches it as well as the primary.
	if err := e.s.DetachIngestParticipant(e.ctx, a.ARN, ic.Credentials[1].ParticipantID); err != nil {
		t.Fatalf("DetachIngestParticipant: %v", err)
	}
	if got := e.getIngest(t, ic.ARN); got.StageARN != "" || len(got.Credentials) != 2 {
		t.Errorf("after DetachIngestParticipant: got stage %q, %d credentials, want \"\", 2", got.StageARN, len(got.Credentials))
	}
	if got := e.getIngest(t, other.ARN); got.StageARN != a.ARN {
		t.Errorf("another configuration of the stage: got stage %q, want %q", got.StageARN, a.ARN)
	}
	wantCode(t, "DetachIngestParticipant again",
		e.s.DetachIngestParticipant(e.ctx, a.ARN, ic.Credentials[0].ParticipantID), ivsrt.ENOTFOUND)

	// DetachActiveIngest takes the stage of the active configurations of
	// the stage only.
	activeA := e.createIngest(t, "active-a", a.ARN, true)
	activeB := e.createIngest(t, "active-b", b.ARN, false)
	e.setIngestActive(t, activeA, activeA.Credentials[1], true)
	e.setIngestActive(t, activeB, activeB.Credentials[0], true)
	n, err := e.s.DetachActiveIngest(e.ctx, a.ARN)
	if err != nil || n != 1 {
		t.Fatalf("DetachActiveIngest: got %d, %v, want 1, nil", n, err)
	}
	for _, tt := range []struct {
		ic    *ivsrt.IngestConfiguration
		stage ivsrt.StageARN
	}{{activeA, ""}, {activeB, b.ARN}, {other, a.ARN}} {
		got := e.getIngest(t, tt.ic.ARN)
		if got.StageARN != tt.stage {
			t.Errorf("%s after DetachActiveIngest: got stage %q, want %q", tt.ic.Name, got.StageARN, tt.stage)
		}
		if tt.ic != other && got.State() != ivsrt.IngestActive {
			t.Errorf("%s after DetachActiveIngest: got state %s, want it still ACTIVE: its encoder is disconnected next", tt.ic.Name, got.State())
		}
	}
	if n, err := e.s.DetachActiveIngest(e.ctx, a.ARN); err != nil || n != 0 {
		t.Errorf("DetachActiveIngest again: got %d, %v, want 0, nil", n, err)
	}
	if n, err := e.s.DetachActiveIngest(e.ctx, ""); err != nil || n != 0 {
		t.Errorf("DetachActiveIngest of no stage: got %d, %v, want 0, nil", n, err)
	}
}

// testIngestActiveRace starts an encoder while its configuration is
// deleted or updated: the change succeeds exactly when it came first.
func testIngestActiveRace(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	st := e.createStage(t, "race", nil)
	for round := range 20 {
		ic := e.createIngest(t, fmt.Sprintf("race%d", round), st.ARN, false)
		id := ic.Credentials[0].ParticipantID
		var (
			wg                sync.WaitGroup
			setErr, changeErr error
		)
		deleting := round%2 == 0
		wg.Add(2)
		go func() {
			defer wg.Done()
			setErr = e.s.SetIngestActive(e.ctx, ic.ARN, id, true)
		}()
		go func() {
			defer wg.Done()
			if deleting {
				changeErr = e.s.DeleteIngestConfiguration(e.ctx, ic.ARN, false)
			} else {
				_, changeErr = e.s.UpdateIngestConfiguration(e.ctx, ic.ARN, ivsrt.IngestConfigurationUpdate{StageARN: ptr(ivsrt.StageARN(""))})
			}
		}()
		wg.Wait()
		if c := ivsrt.ErrorCode(changeErr); c != "" && c != ivsrt.ECONFLICT {
			t.Fatalf("round %d: change: got %v, want nil or ECONFLICT", round, changeErr)
		}
		if deleting {
			if c := ivsrt.ErrorCode(setErr); c != "" && c != ivsrt.ENOTFOUND {
				t.Fatalf("round %d: SetIngestActive: got %v, want nil or ENOTFOUND", round, setErr)
			}
			if (setErr == nil) == (changeErr == nil) {
				t.Fatalf("round %d: SetIngestActive %v, DeleteIngestConfiguration %v: want exactly one to succeed", round, setErr, changeErr)
			}
			continue
		}
		if setErr != nil {
			t.Fatalf("round %d: SetIngestActive: %v", round, setErr)
		}
		// An update that came first took the stage; one that came second
		// was refused and left it.
		got := e.getIngest(t, ic.ARN)
		if wantStage := map[bool]ivsrt.StageARN{true: "", false: st.ARN}[changeErr == nil]; got.StageARN != wantStage || got.State() != ivsrt.IngestActive {
			t.Fatalf("round %d: UpdateIngestConfiguration %v: got stage %q, state %s, want %q, ACTIVE", round, changeErr, got.StageARN, got.State(), wantStage)
		}
	}
}

// joinEncoder records the JOINED of an encoder publishing to ic's stage
// with credential c, as the media plane does.
func (e *env) joinEncoder(t *testing.T, ic *ivsrt.IngestConfiguration, c ivsrt.IngestCredential) *ivsrt.Event {
	t.Helper()
	return e.record(t, &ivsrt.Event{
		StageARN:               ic.StageARN,
		Name:                   ivsrt.EventJoined,
		ParticipantID:          c.ParticipantID,
		Time:                   e.clock.Advance(time.Second),
		UserID:                 ic.UserID,
		Attributes:             ic.Attributes,
		Protocol:               string(ic.Protocol),
		IngestConfigurationARN: ic.ARN,
		RedundantIngest:        ic.RedundantIngest(),
	})
}

// testParticipantIngest: an encoder's participant keeps the ingest
// configuration it joined with, and whether that configuration has
// redundant ingest; other participants have none.
func testParticipantIngest(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	st := e.createStage(t, "encoders", nil)
	redundant := e.createIngest(t, "redundant", st.ARN, true)
	single := e.createIngest(t, "single", st.ARN, false)
	primary, second := redundant.Credentials[0], redundant.Credentials[1]
	browser := ivsrt.NewParticipantID()

	sid := e.joinEncoder(t, redundant, primary).SessionID
	e.joinEncoder(t, redundant, second)
	e.joinEncoder(t, single, single.Credentials[0])
	e.join(t, st.ARN, browser, "viewer")
	// The primary encoder reconnects within the session: it stays the
	// configuration's.
	e.event(t, st.ARN, ivsrt.EventLeft, primary.ParticipantID)
	e.joinEncoder(t, redundant, primary)

	want := map[ivsrt.ParticipantID]struct {
		arn       ivsrt.IngestConfigurationARN
		redundant bool
	}{
		primary.ParticipantID:               {redundant.ARN, true},
		second.ParticipantID:                {redundant.ARN, true},
		single.Credentials[0].ParticipantID: {single.ARN, false},
		browser:                             {"", false},
	}
	check := func(what string, p *ivsrt.Participant) {
		t.Helper()
		w := want[p.ID]
		if p.IngestConfigurationARN != w.arn || p.RedundantIngest != w.redundant {
			t.Errorf("%s %s: got ingest configuration %q, redundant %v, want %q, %v", what, p.ID,
				p.IngestConfigurationARN, p.RedundantIngest, w.arn, w.redundant)
		}
	}
	for id := range want {
		p := e.getParticipant(t, st.ARN, sid, id)
		check("GetParticipant", p)
		if id != browser && p.Protocol != string(ivsrt.IngestRTMPS) {
			t.Errorf("GetParticipant %s: Protocol: got %q, want RTMPS", id, p.Protocol)
		}
	}
	listed := e.allParticipants(t, st.ARN, sid)
	if len(listed) != len(want) {
		t.Errorf("ListParticipants: got %v, want %d participants", participantIDs(listed), len(want))
	}
	for _, p := range listed {
		check("ListParticipants", p)
	}
}
