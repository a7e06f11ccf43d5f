package storecore

import (
	"math"
	"slices"
	"testing"

	"github.com/ivsrt/ivsrt"
)

func TestParseCursor(t *testing.T) {
	tests := []struct {
		page     ivsrt.Page
		want     int64
		wantDesc int64
		code     string
	}{
		{ivsrt.Page{Limit: 1}, 0, math.MaxInt64, ""},
		{ivsrt.Page{After: Cursor(42), Limit: 10}, 42, 42, ""},
		{ivsrt.Page{After: "0", Limit: 10}, 0, 0, ""},
		{ivsrt.Page{Limit: 0}, 0, 0, ivsrt.EINVALID},
		{ivsrt.Page{After: "-1", Limit: 10}, 0, 0, ivsrt.EINVALID},
		{ivsrt.Page{After: "x", Limit: 10}, 0, 0, ivsrt.EINVALID},
	}
	for _, tt := range tests {
		got, err := ParseCursor(tt.page)
		if ivsrt.ErrorCode(err) != tt.code || err == nil && got != tt.want {
			t.Errorf("ParseCursor(%+v): got %d, %v, want %d, code %q", tt.page, got, err, tt.want, tt.code)
		}
		got, err = ParseCursorDesc(tt.page)
		if ivsrt.ErrorCode(err) != tt.code || err == nil && got != tt.wantDesc {
			t.Errorf("ParseCursorDesc(%+v): got %d, %v, want %d, code %q", tt.page, got, err, tt.wantDesc, tt.code)
		}
	}
}

func TestPage(t *testing.T) {
	tests := []struct {
		items    []string
		limit    int
		want     []string
		wantNext string
	}{
		{nil, 2, nil, ""},
		{[]string{"a", "b"}, 2, []string{"a", "b"}, ""},
		{[]string{"a", "b", "c"}, 2, []string{"a", "b"}, "2"},
	}
	for _, tt := range tests {
		seqs := make([]int64, len(tt.items))
		for i := range seqs {
			seqs[i] = int64(i + 1)
		}
		got, next := Page(tt.items, seqs, tt.limit)
		if !slices.Equal(got, tt.want) || next != tt.wantNext {
			t.Errorf("Page(%v, %d): got %v, %q, want %v, %q", tt.items, tt.limit, got, next, tt.want, tt.wantNext)
		}
	}
}
