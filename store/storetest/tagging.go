package storetest

import (
	"fmt"
	"testing"

	"github.com/ivsrt/ivsrt"
)

// manyTags is n tags, k00=v0 and on.
func manyTags(n int) map[string]string {
	m := map[string]string{}
	for i := range n {
		m[fmt.Sprintf("k%02d", i)] = fmt.Sprintf("v%d", i)
	}
	return m
}

// tagging is how the tag tests reach one kind of resource other than a
// stage, by its ARN as TagResource takes it: the rules of TagResource,
// UntagResource and ListTags are the same for every kind, and are
// tested once, here.
type tagging struct {
	get, list string // the resource's Get and List operations, as messages name them
	// create stores a resource named name with tags, in stage where the
	// resource belongs to one, and returns its ARN.
	create func(t *testing.T, e *env, stage ivsrt.StageARN, name string, tags map[string]string) string
	// got is the tags Get returns of arn; listed, those List returns of
	// the first resource it lists (of stage, where the resource belongs
	// to one).
	got    func(t *testing.T, e *env, arn string) map[string]string
	listed func(t *testing.T, e *env, stage ivsrt.StageARN) map[string]string
	// missing is an ARN of the kind that no resource has.
	missing func() string
}

// testResourceTags tags and untags a resource: each case on a store of
// its own, with the resource (created first, so listed first), a
// neighbour of the same kind and a stage, whose tags stay as they were.
// A resource that does not exist has no tags to read or change.
func testResourceTags(t *testing.T, open OpenFunc, r tagging) {
	ab := map[string]string{"a": "1", "b": "2"}
	tests := []struct {
		name    string
		initial map[string]string
		tag     map[string]string
		untag   []string
		code    string
		want    map[string]string
	}{
		{name: "merge and overwrite", initial: ab, tag: map[string]string{"a": "9", "c": "3"}, want: map[string]string{"a": "9", "b": "2", "c": "3"}},
		{name: "into none", tag: map[string]string{"c": "3"}, want: map[string]string{"c": "3"}},
		{name: "untag with an absent key", initial: ab, untag: []string{"a", "zz"}, want: map[string]string{"b": "2"}},
		{name: "untag all", initial: ab, untag: []string{"a", "b"}, want: map[string]string{}},
		{name: "up to the limit", initial: manyTags(49), tag: map[string]string{"last": "x"}, want: func() map[string]string {
			m := manyTags(49)
			m["last"] = "x"
			return m
		}()},
		{name: "up to the limit at once", initial: map[string]string{"a": "1"}, tag: manyTags(49), want: func() map[string]string {
			m := manyTags(49)
			m["a"] = "1"
			return m
		}()},
		{name: "51st tag", initial: manyTags(50), tag: map[string]string{"new": "x"}, code: ivsrt.EINVALID, want: manyTags(50)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, open)
			stage := e.createStage(t, "stage", map[string]string{"a": "stage"})
			arn := r.create(t, e, stage.ARN, "tagged", tt.initial)
			neighbour := r.create(t, e, stage.ARN, "neighbour", map[string]string{"a": "other"})
			var err error
			if tt.tag != nil {
				err = e.s.TagResource(e.ctx, arn, tt.tag)
			} else {
				err = e.s.UntagResource(e.ctx, arn, tt.untag)
			}
			wantCode(t, "tag operation", err, tt.code)
			got, err := e.s.ListTags(e.ctx, arn)
			if err != nil {
				t.Fatalf("ListTags: %v", err)
			}
			checkTags(t, "ListTags", got, tt.want)
			checkTags(t, r.get+" tags", r.got(t, e, arn), tt.want)
			checkTags(t, r.list+" tags", r.listed(t, e, stage.ARN), tt.want)
			checkTags(t, "neighbour's tags", r.got(t, e, neighbour), map[string]string{"a": "other"})
			checkTags(t, "stage's tags", e.listTags(t, stage.ARN), map[string]string{"a": "stage"})
		})
	}

	t.Run("missing", func(t *testing.T) {
		e := newEnv(t, open)
		arn := r.missing()
		wantCode(t, "TagResource", e.s.TagResource(e.ctx, arn, map[string]string{"a": "b"}), ivsrt.ENOTFOUND)
		wantCode(t, "UntagResource", e.s.UntagResource(e.ctx, arn, []string{"a"}), ivsrt.ENOTFOUND)
		_, err := e.s.ListTags(e.ctx, arn)
		wantCode(t, "ListTags", err, ivsrt.ENOTFOUND)
	})
}

// checkGone checks that the resource at arn, deleted, has no tags to
// read or change (UntagResource is given the keys untag), and that del,
// its delete operation op, says it is not found either.
func (e *env) checkGone(t *testing.T, arn string, untag []string, op string, del func() error) {
	t.Helper()
	_, err := e.s.ListTags(e.ctx, arn)
	wantCode(t, "ListTags after delete", err, ivsrt.ENOTFOUND)
	wantCode(t, "TagResource after delete", e.s.TagResource(e.ctx, arn, map[string]string{"a": "b"}), ivsrt.ENOTFOUND)
	wantCode(t, "UntagResource after delete", e.s.UntagResource(e.ctx, arn, untag), ivsrt.ENOTFOUND)
	wantCode(t, op+" again", del(), ivsrt.ENOTFOUND)
}

// firstListed is the tags of the first resource l lists, failing the
// test unless there is one.
func firstListed[T any, A comparable](t *testing.T, l listing[T, A], tags func(T) map[string]string) map[string]string {
	t.Helper()
	items, _, err := l.list(ivsrt.Page{Limit: 1})
	if err != nil || len(items) != 1 {
		t.Fatalf("%s: got %d, %v", l.op, len(items), err)
	}
	return tags(items[0])
}
