package dist

import (
	"testing"
	"time"
)

func TestSummarize(t *testing.T) {
	var ds []time.Duration
	for i := 200; i >= 1; i-- {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	got := Summarize(ds)
	want := Summary{N: 200, P50: 100 * time.Millisecond, P90: 180 * time.Millisecond, P95: 190 * time.Millisecond,
		P99: 198 * time.Millisecond, Max: 200 * time.Millisecond}
	if got != want {
		t.Errorf("got %+v, want %+v", got, want)
	}
	if ds[0] != 200*time.Millisecond {
		t.Error("Summarize sorted its argument")
	}
	if got := Summarize(nil); got != (Summary{}) {
		t.Errorf("no samples: got %+v, want the zero Summary", got)
	}
	for _, tt := range []struct {
		p    float64
		want time.Duration
	}{{0.01, 1 * time.Millisecond}, {0.5, 2 * time.Millisecond}, {0.95, 3 * time.Millisecond}, {1, 3 * time.Millisecond}} {
		if got := Quantile([]time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}, tt.p); got != tt.want {
			t.Errorf("Quantile(1, 2, 3 ms; %v) got %v, want %v", tt.p, got, tt.want)
		}
	}
}
