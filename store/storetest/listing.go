package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/ivsrt/ivsrt"
)

// listing is how the list tests reach one kind of resource, T, whose ARN
// is an A: the pagination every List operation shares is tested once,
// here, and each resource's test keeps only what is its own (its
// filters, its refusals).
type listing[T any, A comparable] struct {
	op    string // the List operation, as messages name it
	noun  string // one resource, as messages name it
	list  func(ivsrt.Page) ([]T, string, error)
	arn   func(T) A
	check func(t *testing.T, what string, got, want T) // every field
}

func (l listing[T, A]) arns(items []T) []A {
	arns := make([]A, len(items))
	for i, x := range items {
		arns[i] = l.arn(x)
	}
	return arns
}

// checkEmpty checks that a store without the resource lists none.
func (l listing[T, A]) checkEmpty(t *testing.T) {
	t.Helper()
	if items, next, err := l.list(ivsrt.Page{Limit: 3}); err != nil || len(items) != 0 || next != "" {
		t.Errorf("%s of an empty store: got %d, next %q, err %v, want 0 \"\" nil", l.op, len(items), next, err)
	}
}

// checkPages checks pages, a list followed from its first page to its
// last, against the page sizes and the resources wanted, in order and
// field by field.
func (l listing[T, A]) checkPages(t *testing.T, pages [][]T, wantSizes []int, want []T) {
	t.Helper()
	if got := sizes(pages); !slices.Equal(got, wantSizes) {
		t.Errorf("page sizes: got %v, want %v", got, wantSizes)
	}
	got := flatten(pages)
	if !slices.Equal(l.arns(got), l.arns(want)) {
		t.Fatalf("%s: got %v, want %v", l.op, l.arns(got), l.arns(want))
	}
	for i := range got {
		l.check(t, fmt.Sprintf("%s %d", l.noun, i), got[i], want[i])
	}
}

// testPageSizes lists want, the seven resources the store holds in the
// order they were created, with page limits from 1 to MaxPageSize: a
// subtest each.
func (l listing[T, A]) testPageSizes(t *testing.T, want []T) {
	t.Helper()
	if len(want) != 7 {
		t.Fatalf("testPageSizes wants 7 resources, got %d", len(want))
	}
	tests := []struct {
		limit int
		sizes []int
	}{
		{1, []int{1, 1, 1, 1, 1, 1, 1}},
		{3, []int{3, 3, 1}},
		{6, []int{6, 1}},
		{7, []int{7}},
		{ivsrt.MaxPageSize, []int{7}},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("limit %d", tt.limit), func(t *testing.T) {
			l.checkPages(t, paginate(t, tt.limit, l.list), tt.sizes, want)
		})
	}
}

// checkChangedBetweenPages lists want, the seven resources the store
// holds in the order they were created, three at a time: between the
// first page and the next, it deletes (del) the last resource returned
// and the first one not yet returned, and adds one (add). The later
// pages hold the rest of want, then the one added, and the list ends.
func (l listing[T, A]) checkChangedBetweenPages(t *testing.T, want []T, del func(A) error, add func(*testing.T) T) {
	t.Helper()
	first, next, err := l.list(ivsrt.Page{Limit: 3})
	if err != nil {
		t.Fatalf("%s: %v", l.op, err)
	}
	if got := l.arns(first); !slices.Equal(got, l.arns(want[:3])) || next == "" {
		t.Fatalf("first page: got %v next %q, want %v and a next page", got, next, l.arns(want[:3]))
	}
	for _, x := range want[2:4] {
		if err := del(l.arn(x)); err != nil {
			t.Fatalf("delete %v: %v", l.arn(x), err)
		}
	}
	added := add(t)
	var rest []T
	for range 10 {
		page, n, err := l.list(ivsrt.Page{After: next, Limit: 3})
		if err != nil {
			t.Fatalf("%s after %q: %v", l.op, next, err)
		}
		rest = append(rest, page...)
		if next = n; next == "" {
			break
		}
	}
	wantRest := append(l.arns(want[4:]), l.arn(added))
	if got := l.arns(rest); !slices.Equal(got, wantRest) {
		t.Errorf("later pages: got %v, want %v", got, wantRest)
	}
	if next != "" {
		t.Errorf("later pages: still a next page (%q) after 10", next)
	}
}
