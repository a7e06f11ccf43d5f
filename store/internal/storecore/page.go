package storecore

import (
	"fmt"
	"math"
	"strconv"

	"github.com/ivsrt/ivsrt"
)

// Cursor and ParseCursor carry a keyset position (the seq of the last row
// returned) between pages. The API signs these, so a bad one here is a bug
// in a caller, reported as invalid input all the same.
func Cursor(seq int64) string { return strconv.FormatInt(seq, 10) }

// ParseCursor returns the seq after which page starts: 0 for the first
// page. Returns EINVALID for a limit below 1 or a position that is not one.
func ParseCursor(page ivsrt.Page) (int64, error) {
	if page.Limit < 1 {
		return 0, ivsrt.Errorf(ivsrt.EINVALID, "page size must be at least 1, got %d", page.Limit)
	}
	if page.After == "" {
		return 0, nil
	}
	seq, err := strconv.ParseInt(page.After, 10, 64)
	if err != nil || seq < 0 {
		return 0, ivsrt.Errorf(ivsrt.EINVALID, "The nextToken is not valid.")
	}
	return seq, nil
}

// ParseCursorDesc is ParseCursor for a list in descending seq order: the
// seq below which page starts, above every seq for the first page.
func ParseCursorDesc(page ivsrt.Page) (int64, error) {
	seq, err := ParseCursor(page)
	if err == nil && page.After == "" {
		seq = math.MaxInt64
	}
	return seq, err
}

// Rows is a query's result as Collect reads it: *sql.Rows and pgx.Rows
// both are.
type Rows interface {
	Next() bool
	Err() error
}

// Collect reads the rows of a query asked for limit+1 rows: up to limit
// items, and the position of the next page, which exists when the query
// returned more. The caller closes rows.
func Collect[T any, R Rows](rows R, limit int, scan func(R) (T, int64, error)) ([]T, string, error) {
	var (
		items []T
		last  int64
		next  string
	)
	for rows.Next() {
		if len(items) == limit {
			// Read to the end, so that the rows close.
			next = Cursor(last)
			continue
		}
		item, seq, err := scan(rows)
		if err != nil {
			return nil, "", fmt.Errorf("scan: %w", err)
		}
		items, last = append(items, item), seq
	}
	if err := rows.Err(); err != nil {
		return nil, "", fmt.Errorf("read rows: %w", err)
	}
	return items, next, nil
}

// Page cuts items, read by a query asked for limit+1 of them, to one page,
// and returns the position of the next page: seqs are the items' own.
func Page[T any](items []T, seqs []int64, limit int) ([]T, string) {
	if len(items) <= limit {
		return items, ""
	}
	return items[:limit], Cursor(seqs[limit-1])
}
