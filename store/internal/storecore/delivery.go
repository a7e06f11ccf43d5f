package storecore

import (
	"fmt"

	"github.com/ivsrt/ivsrt"
)

// CheckEnqueue checks the arguments of ivsrt.DeliveryStore's
// EnqueueDeliveries against the sink's cursor: ECONFLICT if the cursor has
// passed one of the events, EINVALID if they are not in seq order up to
// through.
func CheckEnqueue(sink string, cursor int64, events []*ivsrt.StreamEvent, through int64) error {
	if through < cursor || len(events) > 0 && events[0].Seq <= cursor {
		return ivsrt.Errorf(ivsrt.ECONFLICT, "sink %s has taken in events up to %d already", sink, cursor)
	}
	for i, ev := range events {
		if ev.Seq > through || i > 0 && ev.Seq <= events[i-1].Seq {
			return ivsrt.Errorf(ivsrt.EINVALID, "events to enqueue must be in seq order up to %d", through)
		}
	}
	return nil
}

// CheckOutcomes returns EINVALID if an outcome's result is not one of
// Delivered, Retry and Dead.
func CheckOutcomes(outcomes []ivsrt.DeliveryOutcome) error {
	for _, o := range outcomes {
		switch o.Result {
		case ivsrt.Delivered, ivsrt.Retry, ivsrt.Dead:
		default:
			return ivsrt.Errorf(ivsrt.EINVALID, "unknown delivery result %d", o.Result)
		}
	}
	return nil
}

// DeadLetterLimit is how many dead letters a page of them holds.
func DeadLetterLimit(page ivsrt.Page) int {
	if page.Limit <= 0 {
		return 100
	}
	return page.Limit
}

// PruneBatch is how many events one transaction of Prune deletes, so that
// none grows large or holds a write lock for long.
const PruneBatch = 1000

// Prune calls deleteBatch, which deletes up to PruneBatch events in a
// transaction of its own, until it deletes fewer, and returns how many
// were deleted in all.
func Prune(deleteBatch func() (int64, error)) (int64, error) {
	var total int64
	for {
		n, err := deleteBatch()
		if err != nil {
			return total, fmt.Errorf("prune events: %w", err)
		}
		total += n
		if n < PruneBatch {
			return total, nil
		}
	}
}
