package storetest

import (
	"fmt"
	"maps"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/composition/layout"
)

const testChannelARN = "arn:aws:ivs:us-east-1:123456789012:channel/AbCdEf123456"

func newCompositionARN() ivsrt.CompositionARN {
	return ivsrt.NewCompositionARN("us-east-1", "123456789012", ivsrt.NewCompositionID())
}

// channelTo is a channel destination encoding with encoder, "" for the
// default encoding.
func channelTo(encoder ivsrt.EncoderConfigurationARN) ivsrt.CompositionDestination {
	return ivsrt.CompositionDestination{
		ID:    ivsrt.NewCompositionID(),
		State: ivsrt.DestinationStarting,
		Configuration: ivsrt.DestinationConfiguration{Name: "live",
			Channel: &ivsrt.ChannelDestination{ChannelARN: testChannelARN, EncoderConfigurationARN: encoder}},
	}
}

// s3To is an S3 destination recording to storage with encoder.
func s3To(storage ivsrt.StorageConfigurationARN, encoder ivsrt.EncoderConfigurationARN) ivsrt.CompositionDestination {
	return ivsrt.CompositionDestination{
		ID:    ivsrt.NewCompositionID(),
		State: ivsrt.DestinationStarting,
		Configuration: ivsrt.DestinationConfiguration{Name: "archive",
			S3: &ivsrt.S3Destination{StorageConfigurationARN: storage, EncoderConfigurationARNs: []ivsrt.EncoderConfigurationARN{encoder}}},
		RecordingPrefix: "prefix/composite",
	}
}

// newComposition is a STARTING composition of stage with the default
// layout and the given destinations.
func newComposition(stage ivsrt.StageARN, dests ...ivsrt.CompositionDestination) *ivsrt.Composition {
	return &ivsrt.Composition{
		ARN:          newCompositionARN(),
		StageARN:     stage,
		State:        ivsrt.CompositionStarting,
		Layout:       layout.Config{Grid: &layout.Grid{VideoAspectRatio: layout.AspectVideo, GridGap: ptr(2)}},
		Destinations: dests,
	}
}

func (e *env) createComposition(t *testing.T, c *ivsrt.Composition) *ivsrt.Composition {
	t.Helper()
	if err := e.s.CreateComposition(e.ctx, c); err != nil {
		t.Fatalf("CreateComposition: %v", err)
	}
	return c
}

func (e *env) getComposition(t *testing.T, arn ivsrt.CompositionARN) *ivsrt.Composition {
	t.Helper()
	return fetch(t, e, "GetComposition", e.s.GetComposition, arn)
}

// setCompositionState stores c in state, ended now if the state is one
// that ends it.
func (e *env) setCompositionState(t *testing.T, c *ivsrt.Composition, state ivsrt.CompositionState) {
	t.Helper()
	c.State = state
	if state.Ended() {
		c.EndTime = e.clock.Now()
	}
	if err := e.s.UpdateComposition(e.ctx, c); err != nil {
		t.Fatalf("UpdateComposition to %s: %v", state, err)
	}
}

func compositionARNs(cs []*ivsrt.Composition) []ivsrt.CompositionARN {
	arns := make([]ivsrt.CompositionARN, len(cs))
	for i, c := range cs {
		arns[i] = c.ARN
	}
	return arns
}

// storedComposition is what a store gives back of c: a copy, its tags a
// map (checkComposition compares times at millisecond precision).
func storedComposition(c *ivsrt.Composition) *ivsrt.Composition {
	s := *c
	s.Tags = maps.Clone(c.Tags)
	if s.Tags == nil {
		s.Tags = map[string]string{}
	}
	s.Destinations = slices.Clone(c.Destinations)
	return &s
}

func checkComposition(t *testing.T, what string, got, want *ivsrt.Composition) {
	t.Helper()
	if got.ARN != want.ARN || got.StageARN != want.StageARN || got.State != want.State || got.IdempotencyToken != want.IdempotencyToken {
		t.Errorf("%s: got %s of %s, %s, token %q, want %s of %s, %s, token %q", what,
			got.ARN, got.StageARN, got.State, got.IdempotencyToken, want.ARN, want.StageARN, want.State, want.IdempotencyToken)
	}
	if !reflect.DeepEqual(got.Layout, want.Layout) {
		t.Errorf("%s: Layout: got %s, want %s", what, formatLayout(got.Layout), formatLayout(want.Layout))
	}
	checkDestinations(t, what+": Destinations", got.Destinations, want.Destinations)
	checkTags(t, what+": Tags", got.Tags, want.Tags)
	if got.Tags == nil {
		t.Errorf("%s: Tags: got nil, want a map", what)
	}
	checkTime(t, what+": StartTime", got.StartTime, want.StartTime)
	checkTime(t, what+": EndTime", got.EndTime, want.EndTime)
	checkTime(t, what+": CreatedAt", got.CreatedAt, want.CreatedAt)
}

func formatLayout(c layout.Config) string {
	switch {
	case c.Grid != nil:
		return fmt.Sprintf("grid %+v (gap %v)", *c.Grid, deref(c.Grid.GridGap))
	case c.PiP != nil:
		return fmt.Sprintf("pip %+v (gap %v, size %vx%v)", *c.PiP, deref(c.PiP.GridGap), deref(c.PiP.PipWidth), deref(c.PiP.PipHeight))
	}
	return "none"
}

func deref(p *int) any {
	if p == nil {
		return nil
	}
	return *p
}

func checkDestinations(t *testing.T, what string, got, want []ivsrt.CompositionDestination) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: got %d, want %d", what, len(got), len(want))
	}
	for i := range got {
		g, w := got[i], want[i]
		dw := fmt.Sprintf("%s[%d]", what, i)
		checkTime(t, dw+": StartTime", g.StartTime, w.StartTime)
		checkTime(t, dw+": EndTime", g.EndTime, w.EndTime)
		g.StartTime, g.EndTime, w.StartTime, w.EndTime = time.Time{}, time.Time{}, time.Time{}, time.Time{}
		if !reflect.DeepEqual(g, w) {
			t.Errorf("%s: got %s, want %s", dw, formatDestination(g), formatDestination(w))
		}
	}
}

func formatDestination(d ivsrt.CompositionDestination) string {
	s := fmt.Sprintf("{%s %s %q prefix %q", d.ID, d.State, d.Configuration.Name, d.RecordingPrefix)
	if ch := d.Configuration.Channel; ch != nil {
		s += fmt.Sprintf(" channel %+v", *ch)
	}
	if s3 := d.Configuration.S3; s3 != nil {
		s += fmt.Sprintf(" s3 %+v", *s3)
	}
	return s + "}"
}

func testComposition(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	stage := e.createStage(t, "composed", nil)
	live := e.createEncoder(t, "live", nil)
	archive := e.createEncoder(t, "archive", nil)
	bucket := e.createStorage(t, "archive", nil)

	created := e.clock.Now()
	recorded := s3To(bucket.ARN, archive.ARN)
	recorded.Configuration.S3.TargetSegmentDurationSeconds = 4
	recorded.Configuration.S3.Thumbnails = []ivsrt.CompositionThumbnail{{TargetIntervalSeconds: 30, Storage: []string{"SEQUENTIAL", "LATEST"}}}
	recorded.RecordingPrefix = stage.ARN.ID() + "/abc/composite"
	grid := &ivsrt.Composition{
		ARN:      newCompositionARN(),
		StageARN: stage.ARN,
		State:    ivsrt.CompositionStarting,
		Layout: layout.Config{Grid: &layout.Grid{
			FeaturedParticipantAttribute: "featured",
			OmitStoppedVideo:             true,
			VideoAspectRatio:             layout.AspectSquare,
			VideoFillMode:                layout.FillContain,
			GridGap:                      ptr(0),
			ParticipantOrderAttribute:    "order",
		}},
		Destinations:     []ivsrt.CompositionDestination{channelTo(live.ARN), recorded},
		Tags:             map[string]string{"team": "video", "empty": ""},
		IdempotencyToken: "token_1-A",
	}
	want := storedComposition(grid)
	want.CreatedAt = created
	e.createComposition(t, grid)
	checkTime(t, "CreatedAt set by CreateComposition", grid.CreatedAt, created)
	checkComposition(t, "GetComposition", e.getComposition(t, grid.ARN), want)
	tags, err := e.s.ListTags(e.ctx, string(grid.ARN))
	if err != nil {
		t.Fatalf("ListTags: %v", err)
	}
	checkTags(t, "ListTags", tags, want.Tags)

	// A PiP layout, the default encoding, no token, no tags, and times
	// already set.
	e.clock.Advance(time.Second)
	pip := &ivsrt.Composition{
		ARN:      newCompositionARN(),
		StageARN: stage.ARN,
		State:    ivsrt.CompositionActive,
		Layout: layout.Config{PiP: &layout.PiP{
			FeaturedParticipantAttribute: "featured",
			VideoFillMode:                layout.FillCover,
			GridGap:                      ptr(0),
			PipParticipantAttribute:      "pip",
			PipBehavior:                  layout.PipDynamic,
			PipOffset:                    12,
			PipPosition:                  layout.PipTopRight,
			PipWidth:                     ptr(320),
			PipHeight:                    ptr(180),
		}},
		Destinations: []ivsrt.CompositionDestination{channelTo("")},
		StartTime:    epoch.Add(time.Second + 123456789),
	}
	pip.Destinations[0].State, pip.Destinations[0].StartTime = ivsrt.DestinationActive, pip.StartTime
	wantPiP := storedComposition(pip)
	wantPiP.CreatedAt = e.clock.Now()
	e.createComposition(t, pip)
	checkComposition(t, "GetComposition of the PiP composition", e.getComposition(t, pip.ARN), wantPiP)

	// By token.
	byToken, err := e.s.CompositionByIdempotencyToken(e.ctx, "token_1-A")
	if err != nil {
		t.Fatalf("CompositionByIdempotencyToken: %v", err)
	}
	checkComposition(t, "CompositionByIdempotencyToken", byToken, want)
	for _, token := range []string{"token_1-a", "other", ""} {
		_, err := e.s.CompositionByIdempotencyToken(e.ctx, token)
		wantCode(t, fmt.Sprintf("CompositionByIdempotencyToken(%q)", token), err, ivsrt.ENOTFOUND)
	}
	_, err = e.s.GetComposition(e.ctx, newCompositionARN())
	wantCode(t, "GetComposition of an unknown ARN", err, ivsrt.ENOTFOUND)

	// Refusals write nothing.
	e.clock.Advance(time.Second)
	refused := func(what string, c *ivsrt.Composition, code string) {
		t.Helper()
		wantCode(t, what, e.s.CreateComposition(e.ctx, c), code)
		if c.ARN != grid.ARN {
			_, err := e.s.GetComposition(e.ctx, c.ARN)
			wantCode(t, what+": GetComposition", err, ivsrt.ENOTFOUND)
			_, err = e.s.ListTags(e.ctx, string(c.ARN))
			wantCode(t, what+": ListTags", err, ivsrt.ENOTFOUND)
		}
	}
	dup := newComposition(stage.ARN, channelTo(""))
	dup.ARN, dup.Tags = grid.ARN, map[string]string{"x": "y"}
	refused("CreateComposition with an existing ARN", dup, ivsrt.ECONFLICT)
	sameToken := newComposition(stage.ARN, channelTo(""))
	sameToken.IdempotencyToken, sameToken.Tags = "token_1-A", map[string]string{"x": "y"}
	refused("CreateComposition with a used token", sameToken, ivsrt.ECONFLICT)
	missingEncoder := newComposition(stage.ARN, channelTo(live.ARN), s3To(bucket.ARN, newEncoderARN()))
	missingEncoder.Tags = map[string]string{"x": "y"}
	refused("CreateComposition naming a missing encoder configuration", missingEncoder, ivsrt.ENOTFOUND)
	refused("CreateComposition naming a missing storage configuration",
		newComposition(stage.ARN, s3To(newStorageARN(), archive.ARN)), ivsrt.ENOTFOUND)
	refused("CreateComposition whose channel names a missing encoder configuration",
		newComposition(stage.ARN, channelTo(newEncoderARN())), ivsrt.ENOTFOUND)
	checkComposition(t, "GetComposition after the refusals", e.getComposition(t, grid.ARN), want)
	all, _, err := e.s.ListCompositions(e.ctx, ivsrt.CompositionFilter{}, ivsrt.Page{Limit: 10})
	if err != nil {
		t.Fatalf("ListCompositions: %v", err)
	}
	if got, wantARNs := compositionARNs(all), []ivsrt.CompositionARN{grid.ARN, pip.ARN}; !slices.Equal(got, wantARNs) {
		t.Errorf("ListCompositions after the refusals: got %v, want %v", got, wantARNs)
	}

	// Without a token, any number; the stage need not exist.
	for range 2 {
		c := e.createComposition(t, newComposition(newARN(), channelTo("")))
		checkComposition(t, "GetComposition without a token", e.getComposition(t, c.ARN),
			&ivsrt.Composition{ARN: c.ARN, StageARN: c.StageARN, State: c.State, Layout: c.Layout, Destinations: c.Destinations,
				Tags: map[string]string{}, CreatedAt: e.clock.Now()})
	}

	// A stage whose id is the composition's keeps tags of its own.
	twin := &ivsrt.Stage{ARN: ivsrt.NewStageARN("us-east-1", "123456789012", grid.ARN.ID()), Tags: map[string]string{"stage": "yes"}}
	if err := e.s.CreateStage(e.ctx, twin, nil, ivsrt.StageQuota{}); err != nil {
		t.Fatalf("CreateStage: %v", err)
	}
	checkTags(t, "tags of the stage with the same id", e.listTags(t, twin.ARN), map[string]string{"stage": "yes"})
	checkTags(t, "tags of the composition", e.getComposition(t, grid.ARN).Tags, want.Tags)
}

// compositionListing is how the list tests reach the compositions that
// pass filter.
func (e *env) compositionListing(filter ivsrt.CompositionFilter) listing[*ivsrt.Composition, ivsrt.CompositionARN] {
	return listing[*ivsrt.Composition, ivsrt.CompositionARN]{op: "ListCompositions", noun: "composition",
		list: func(p ivsrt.Page) ([]*ivsrt.Composition, string, error) {
			return e.s.ListCompositions(e.ctx, filter, p)
		},
		arn:   func(c *ivsrt.Composition) ivsrt.CompositionARN { return c.ARN },
		check: checkComposition}
}

func testListCompositions(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	list := func(f ivsrt.CompositionFilter) func(ivsrt.Page) ([]*ivsrt.Composition, string, error) {
		return e.compositionListing(f).list
	}
	compositions := e.compositionListing(ivsrt.CompositionFilter{})
	compositions.checkEmpty(t)
	a, b := e.createStage(t, "a", nil), e.createStage(t, "b", nil)
	enc1, enc2, unused := e.createEncoder(t, "one", nil), e.createEncoder(t, "two", nil), e.createEncoder(t, "unused", nil)
	bucket := e.createStorage(t, "bucket", nil)

	// Seven compositions: of stage a or b in turn, each with a channel
	// destination encoding with enc1, enc2 or the default in turn, and
	// every third with an S3 destination encoding with enc2 as well.
	var want []*ivsrt.Composition
	for i := range 7 {
		now := e.clock.Advance(time.Second)
		stage := []ivsrt.StageARN{a.ARN, b.ARN}[i%2]
		enc := []ivsrt.EncoderConfigurationARN{enc1.ARN, enc2.ARN, ""}[i%3]
		dests := []ivsrt.CompositionDestination{channelTo(enc)}
		if i%3 == 0 {
			dests = append(dests, s3To(bucket.ARN, enc2.ARN))
		}
		c := newComposition(stage, dests...)
		c.Tags = map[string]string{"n": fmt.Sprint(i)}
		if i%3 == 1 {
			c.Tags = nil
		}
		e.createComposition(t, c)
		w := storedComposition(c)
		w.CreatedAt = now
		want = append(want, w)
	}
	pick := func(is ...int) []*ivsrt.Composition {
		var cs []*ivsrt.Composition
		for _, i := range is {
			cs = append(cs, want[i])
		}
		return cs
	}
	tests := []struct {
		name   string
		filter ivsrt.CompositionFilter
		limit  int
		sizes  []int
		want   []*ivsrt.Composition
	}{
		{"stage a", ivsrt.CompositionFilter{StageARN: a.ARN}, 3, []int{3, 1}, pick(0, 2, 4, 6)},
		{"stage b", ivsrt.CompositionFilter{StageARN: b.ARN}, 2, []int{2, 1}, pick(1, 3, 5)},
		{"unknown stage", ivsrt.CompositionFilter{StageARN: newARN()}, 3, []int{0}, nil},
		{"channel encoder", ivsrt.CompositionFilter{EncoderConfigurationARN: enc1.ARN}, 3, []int{3}, pick(0, 3, 6)},
		{"channel and s3 encoder", ivsrt.CompositionFilter{EncoderConfigurationARN: enc2.ARN}, 2, []int{2, 2, 1}, pick(0, 1, 3, 4, 6)},
		{"unused encoder", ivsrt.CompositionFilter{EncoderConfigurationARN: unused.ARN}, 3, []int{0}, nil},
	}
	t.Run("all", func(t *testing.T) { compositions.testPageSizes(t, want) })
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			compositions.checkPages(t, paginate(t, tt.limit, list(tt.filter)), tt.sizes, tt.want)
		})
	}

	_, _, err := list(ivsrt.CompositionFilter{StageARN: a.ARN, EncoderConfigurationARN: enc1.ARN})(ivsrt.Page{Limit: 3})
	wantCode(t, "ListCompositions with both filters", err, ivsrt.EINVALID)
	_, _, err = list(ivsrt.CompositionFilter{})(ivsrt.Page{Limit: 0})
	wantCode(t, "ListCompositions with limit 0", err, ivsrt.EINVALID)

	// An update does not move a composition in the order, nor out of its
	// filters.
	e.setCompositionState(t, want[0], ivsrt.CompositionStopped)
	listed, _, err := list(ivsrt.CompositionFilter{EncoderConfigurationARN: enc1.ARN})(ivsrt.Page{Limit: 10})
	if err != nil {
		t.Fatalf("ListCompositions: %v", err)
	}
	if got, wantARNs := compositionARNs(listed), compositionARNs(pick(0, 3, 6)); !slices.Equal(got, wantARNs) {
		t.Errorf("ListCompositions of enc1 after an update: got %v, want %v", got, wantARNs)
	}

	t.Run("added between pages", func(t *testing.T) {
		first, next, err := list(ivsrt.CompositionFilter{StageARN: b.ARN})(ivsrt.Page{Limit: 2})
		if err != nil || next == "" {
			t.Fatalf("first page: got %d, next %q, err %v, want a next page", len(first), next, err)
		}
		added := e.createComposition(t, newComposition(b.ARN, channelTo("")))
		e.createComposition(t, newComposition(a.ARN, channelTo("")))
		rest, next, err := list(ivsrt.CompositionFilter{StageARN: b.ARN})(ivsrt.Page{After: next, Limit: 10})
		if err != nil || next != "" {
			t.Fatalf("second page: got %d, next %q, err %v, want the last page", len(rest), next, err)
		}
		if got, wantRest := compositionARNs(rest), []ivsrt.CompositionARN{want[5].ARN, added.ARN}; !slices.Equal(got, wantRest) {
			t.Errorf("second page: got %v, want %v", got, wantRest)
		}
	})
}

func testUpdateComposition(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	stage := e.createStage(t, "composed", nil)
	enc := e.createEncoder(t, "enc", nil)
	bucket := e.createStorage(t, "bucket", nil)
	c := newComposition(stage.ARN, channelTo(enc.ARN), s3To(bucket.ARN, enc.ARN))
	c.Tags, c.IdempotencyToken = map[string]string{"k": "v"}, "tok"
	created := e.clock.Now()
	e.createComposition(t, c)
	after := e.lastSeq(t)

	// Started: the composition and its first destination, with their
	// events.
	started := e.clock.Advance(time.Second)
	c.State, c.StartTime = ivsrt.CompositionActive, started
	c.Destinations[0].State, c.Destinations[0].StartTime = ivsrt.DestinationActive, started
	c.Destinations[1].RecordingPrefix = "stage/comp/composite-2"
	evs := []*ivsrt.StreamEvent{
		ivsrt.NewCompositionStreamEvent(c, ivsrt.StreamCompositionSessionStart, "", "", started),
		ivsrt.NewCompositionStreamEvent(c, ivsrt.StreamCompositionDestinationStart, c.Destinations[0].ID, "", started),
	}
	if err := e.s.UpdateComposition(e.ctx, c, evs...); err != nil {
		t.Fatalf("UpdateComposition: %v", err)
	}
	for i, ev := range evs {
		if ev.Seq <= after {
			t.Errorf("event %d: Seq %d, want one after %d", i, ev.Seq, after)
		}
	}
	want := storedComposition(c)
	want.CreatedAt = created
	checkComposition(t, "GetComposition after the start", e.getComposition(t, c.ARN), want)
	detail := func(name, dest, reason string) map[string]any {
		d := map[string]any{"event_name": name, "stage_arn": string(stage.ARN), "composition_arn": string(c.ARN)}
		if dest != "" {
			d["destination_id"] = dest
		}
		if reason != "" {
			d["reason"] = reason
		}
		return d
	}
	checkStream(t, ReadAllEvents(t, e.s, after, 10), []wantStream{
		{stage.ARN, ivsrt.DetailTypeCompositionStateChange, detail(ivsrt.StreamCompositionSessionStart, "", ""), started},
		{stage.ARN, ivsrt.DetailTypeCompositionStateChange, detail(ivsrt.StreamCompositionDestinationStart, c.Destinations[0].ID, ""), started},
	})
	after = e.lastSeq(t)

	// A change without events appends none.
	c.Destinations[1].State = ivsrt.DestinationReconnecting
	if err := e.s.UpdateComposition(e.ctx, c); err != nil {
		t.Fatalf("UpdateComposition without events: %v", err)
	}
	if seq := e.lastSeq(t); seq != after {
		t.Errorf("LastEventSeq after an update without events: got %d, want %d", seq, after)
	}
	want = storedComposition(c)
	want.CreatedAt = created
	checkComposition(t, "GetComposition after the second update", e.getComposition(t, c.ARN), want)

	// Failed: every destination ends.
	ended := e.clock.Advance(90*time.Second + 1234567)
	c.State, c.EndTime = ivsrt.CompositionFailed, ended
	for i := range c.Destinations {
		c.Destinations[i].State, c.Destinations[i].EndTime = ivsrt.DestinationFailed, ended
	}
	failure := ivsrt.NewCompositionStreamEvent(c, ivsrt.StreamCompositionDestinationFailure, c.Destinations[1].ID, "bucket unreachable", ended)
	end := ivsrt.NewCompositionStreamEvent(c, ivsrt.StreamCompositionSessionFailure, "", "engine exited", ended)
	if err := e.s.UpdateComposition(e.ctx, c, failure, end); err != nil {
		t.Fatalf("UpdateComposition to FAILED: %v", err)
	}
	want = storedComposition(c)
	want.CreatedAt = created
	checkComposition(t, "GetComposition after the failure", e.getComposition(t, c.ARN), want)
	byToken, err := e.s.CompositionByIdempotencyToken(e.ctx, "tok")
	if err != nil {
		t.Fatalf("CompositionByIdempotencyToken: %v", err)
	}
	checkComposition(t, "CompositionByIdempotencyToken after the failure", byToken, want)
	checkStream(t, ReadAllEvents(t, e.s, after, 1), []wantStream{
		{stage.ARN, ivsrt.DetailTypeCompositionStateChange, detail(ivsrt.StreamCompositionDestinationFailure, c.Destinations[1].ID, "bucket unreachable"), ended},
		{stage.ARN, ivsrt.DetailTypeCompositionStateChange, detail(ivsrt.StreamCompositionSessionFailure, "", "engine exited"), ended},
	})

	// The layout, tags and token are the creation's; only what
	// UpdateComposition writes changes.
	other := *c
	other.Layout = layout.Config{PiP: &layout.PiP{}}
	other.Tags = map[string]string{"new": "tag"}
	other.StageARN = newARN()
	if err := e.s.UpdateComposition(e.ctx, &other); err != nil {
		t.Fatalf("UpdateComposition: %v", err)
	}
	checkComposition(t, "GetComposition after an update of what does not change", e.getComposition(t, c.ARN), want)

	// A missing composition: nothing written, no event.
	after = e.lastSeq(t)
	missing := newComposition(stage.ARN, channelTo(""))
	ev := ivsrt.NewCompositionStreamEvent(missing, ivsrt.StreamCompositionSessionStart, "", "", e.clock.Now())
	wantCode(t, "UpdateComposition of a missing composition", e.s.UpdateComposition(e.ctx, missing, ev), ivsrt.ENOTFOUND)
	if seq := e.lastSeq(t); seq != after {
		t.Errorf("LastEventSeq after the refused update: got %d, want %d", seq, after)
	}
	_, err = e.s.GetComposition(e.ctx, missing.ARN)
	wantCode(t, "GetComposition of the missing composition", err, ivsrt.ENOTFOUND)
}

func testCompositionTags(t *testing.T, open OpenFunc) {
	testResourceTags(t, open, tagging{get: "GetComposition", list: "ListCompositions",
		create: func(t *testing.T, e *env, stage ivsrt.StageARN, _ string, tags map[string]string) string {
			c := newComposition(stage, channelTo(""))
			c.Tags = tags
			return string(e.createComposition(t, c).ARN)
		},
		got: func(t *testing.T, e *env, arn string) map[string]string {
			return e.getComposition(t, ivsrt.CompositionARN(arn)).Tags
		},
		listed: func(t *testing.T, e *env, stage ivsrt.StageARN) map[string]string {
			return firstListed(t, e.compositionListing(ivsrt.CompositionFilter{StageARN: stage}),
				func(c *ivsrt.Composition) map[string]string { return c.Tags })
		},
		missing: func() string { return string(newCompositionARN()) },
	})
}

func testConfigurationsInUseByComposition(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	stage := e.createStage(t, "composed", nil)
	deleteIs := func(what string, del func() error, arn string, code string) {
		t.Helper()
		err := del()
		wantCode(t, what, err, code)
		if code == ivsrt.ECONFLICT && err != nil && !strings.Contains(ivsrt.ErrorMessage(err), arn) {
			t.Errorf("%s: message %q does not name %s", what, ivsrt.ErrorMessage(err), arn)
		}
	}
	deleteEncoder := func(what string, ec *ivsrt.EncoderConfiguration, code string) {
		t.Helper()
		deleteIs(what, func() error { return e.s.DeleteEncoderConfiguration(e.ctx, ec.ARN) }, string(ec.ARN), code)
	}
	deleteStorage := func(what string, sc *ivsrt.StorageConfiguration, code string) {
		t.Helper()
		deleteIs(what, func() error { return e.s.DeleteStorageConfiguration(e.ctx, sc.ARN) }, string(sc.ARN), code)
	}

	t.Run("stopped", func(t *testing.T) {
		live := e.createEncoder(t, "live", map[string]string{"k": "v"})
		archive := e.createEncoder(t, "archive", nil)
		bucket := e.createStorage(t, "bucket", map[string]string{"k": "v"})
		c := e.createComposition(t, newComposition(stage.ARN, channelTo(live.ARN), s3To(bucket.ARN, archive.ARN)))
		for _, state := range []ivsrt.CompositionState{ivsrt.CompositionStarting, ivsrt.CompositionActive, ivsrt.CompositionStopping} {
			if state != ivsrt.CompositionStarting {
				e.setCompositionState(t, c, state)
			}
			deleteEncoder(fmt.Sprintf("delete the channel's encoder configuration while %s", state), live, ivsrt.ECONFLICT)
			deleteEncoder(fmt.Sprintf("delete the S3 destination's encoder configuration while %s", state), archive, ivsrt.ECONFLICT)
			deleteStorage(fmt.Sprintf("delete the storage configuration while %s", state), bucket, ivsrt.ECONFLICT)
		}
		checkEncoder(t, "the refused encoder configuration", e.getEncoder(t, live.ARN),
			&ivsrt.EncoderConfiguration{ARN: live.ARN, Name: "live", Video: ivsrt.DefaultVideo(), Tags: map[string]string{"k": "v"}, CreatedAt: epoch})
		checkStorage(t, "the refused storage configuration", e.getStorage(t, bucket.ARN),
			&ivsrt.StorageConfiguration{ARN: bucket.ARN, Name: "bucket", S3BucketName: bucket.S3BucketName, Tags: map[string]string{"k": "v"}, CreatedAt: epoch})

		e.setCompositionState(t, c, ivsrt.CompositionStopped)
		deleteEncoder("delete the channel's encoder configuration once STOPPED", live, "")
		deleteEncoder("delete the S3 destination's encoder configuration once STOPPED", archive, "")
		deleteStorage("delete the storage configuration once STOPPED", bucket, "")
		_, err := e.s.ListTags(e.ctx, string(live.ARN))
		wantCode(t, "ListTags of the deleted encoder configuration", err, ivsrt.ENOTFOUND)
		// The composition still tells what it used.
		checkDestinations(t, "destinations of the stopped composition", e.getComposition(t, c.ARN).Destinations, c.Destinations)
	})

	t.Run("failed", func(t *testing.T) {
		enc := e.createEncoder(t, "enc", nil)
		bucket := e.createStorage(t, "failing", nil)
		a := e.createComposition(t, newComposition(stage.ARN, s3To(bucket.ARN, enc.ARN)))
		b := e.createComposition(t, newComposition(stage.ARN, channelTo(enc.ARN)))
		e.setCompositionState(t, a, ivsrt.CompositionFailed)
		deleteStorage("delete the storage configuration once its composition FAILED", bucket, "")
		deleteEncoder("delete the encoder configuration a second composition uses", enc, ivsrt.ECONFLICT)
		e.setCompositionState(t, b, ivsrt.CompositionFailed)
		deleteEncoder("delete the encoder configuration once both FAILED", enc, "")
	})

	t.Run("a stage and a composition", func(t *testing.T) {
		enc := e.createEncoder(t, "enc", nil)
		bucket := e.createStorage(t, "shared", nil)
		recorded := &ivsrt.Stage{ARN: newARN(), AutoParticipantRecording: recordingTo(bucket.ARN)}
		if err := e.s.CreateStage(e.ctx, recorded, nil, ivsrt.StageQuota{}); err != nil {
			t.Fatalf("CreateStage: %v", err)
		}
		c := e.createComposition(t, newComposition(stage.ARN, s3To(bucket.ARN, enc.ARN)))
		e.setCompositionState(t, c, ivsrt.CompositionStopped)
		deleteStorage("delete the storage configuration a stage still names", bucket, ivsrt.ECONFLICT)
		if _, err := e.s.UpdateStage(e.ctx, recorded.ARN, ivsrt.StageUpdate{AutoParticipantRecording: recordingTo("")}); err != nil {
			t.Fatalf("UpdateStage: %v", err)
		}
		other := e.createComposition(t, newComposition(stage.ARN, s3To(bucket.ARN, enc.ARN)))
		deleteStorage("delete the storage configuration a new composition names", bucket, ivsrt.ECONFLICT)
		e.setCompositionState(t, other, ivsrt.CompositionStopped)
		deleteStorage("delete the storage configuration once nothing uses it", bucket, "")
		deleteEncoder("delete the encoder configuration once nothing uses it", enc, "")
	})

	t.Run("unused", func(t *testing.T) {
		enc := e.createEncoder(t, "unused", nil)
		sc := e.createStorage(t, "unused", nil)
		e.createComposition(t, newComposition(stage.ARN, channelTo("")))
		deleteEncoder("delete an encoder configuration no composition uses", enc, "")
		deleteStorage("delete a storage configuration no composition uses", sc, "")
	})
}

// testCompositionDeleteRace races compositions that use an encoder and a
// storage configuration against the deletion of each: exactly one of them
// must win, so that no composition that runs is left naming one that is
// gone.
func testCompositionDeleteRace(t *testing.T, open OpenFunc) {
	e := newEnv(t, open)
	stage := e.createStage(t, "raced", nil)
	for round := range 20 {
		enc := e.createEncoder(t, fmt.Sprintf("race%d", round), nil)
		sc := e.createStorage(t, fmt.Sprintf("race%d", round), nil)
		var (
			wg                            sync.WaitGroup
			channelErr, s3Err             error
			deleteEncoderErr, deleteSCErr error
			channelComp, s3Comp           = newComposition(stage.ARN, channelTo(enc.ARN)), newComposition(stage.ARN, s3To(sc.ARN, enc.ARN))
		)
		wg.Add(4)
		go func() { defer wg.Done(); channelErr = e.s.CreateComposition(e.ctx, channelComp) }()
		go func() { defer wg.Done(); s3Err = e.s.CreateComposition(e.ctx, s3Comp) }()
		go func() { defer wg.Done(); deleteEncoderErr = e.s.DeleteEncoderConfiguration(e.ctx, enc.ARN) }()
		go func() { defer wg.Done(); deleteSCErr = e.s.DeleteStorageConfiguration(e.ctx, sc.ARN) }()
		wg.Wait()
		for _, err := range []error{channelErr, s3Err} {
			if c := ivsrt.ErrorCode(err); c != "" && c != ivsrt.ENOTFOUND {
				t.Fatalf("round %d: CreateComposition: got %v, want nil or ENOTFOUND", round, err)
			}
		}
		for _, err := range []error{deleteEncoderErr, deleteSCErr} {
			if c := ivsrt.ErrorCode(err); c != "" && c != ivsrt.ECONFLICT {
				t.Fatalf("round %d: delete: got %v, want nil or ECONFLICT", round, err)
			}
		}
		if usesEncoder := channelErr == nil || s3Err == nil; usesEncoder == (deleteEncoderErr == nil) {
			t.Fatalf("round %d: CreateComposition %v and %v, DeleteEncoderConfiguration %v: want the delete to succeed exactly when no composition uses it",
				round, channelErr, s3Err, deleteEncoderErr)
		}
		if usesStorage := s3Err == nil; usesStorage == (deleteSCErr == nil) {
			t.Fatalf("round %d: CreateComposition %v, DeleteStorageConfiguration %v: want the delete to succeed exactly when no composition uses it",
				round, s3Err, deleteSCErr)
		}
		// What is stored agrees.
		for _, c := range []*ivsrt.Composition{channelComp, s3Comp} {
			_, err := e.s.GetComposition(e.ctx, c.ARN)
			created := c == channelComp && channelErr == nil || c == s3Comp && s3Err == nil
			if created != (err == nil) {
				t.Fatalf("round %d: GetComposition: got %v, want it stored exactly when created", round, err)
			}
		}
	}
}
