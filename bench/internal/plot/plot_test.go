package plot

import (
	"encoding/xml"
	"io"
	"math"
	"slices"
	"strings"
	"testing"
)

func TestTicks(t *testing.T) {
	tests := []struct {
		lo, hi float64
		log    bool
		want   []float64
	}{
		{0, 97, false, []float64{0, 20, 40, 60, 80, 100}},
		{0, 1, false, []float64{0, 0.2, 0.4, 0.6, 0.8, 1}},
		{1, 64, true, []float64{1, 2, 5, 10, 20, 50, 100}},
		{3, 40000, true, []float64{1, 10, 100, 1000, 10000, 100000}},
	}
	for _, tt := range tests {
		got, _, _, _ := ticks(tt.lo, tt.hi, tt.log, true)
		if len(got) != len(tt.want) {
			t.Errorf("ticks(%v, %v, %v) = %v, want %v", tt.lo, tt.hi, tt.log, got, tt.want)
			continue
		}
		for i := range got {
			if math.Abs(got[i]-tt.want[i]) > 1e-9*math.Max(1, tt.want[i]) {
				t.Errorf("ticks(%v, %v, %v) = %v, want %v", tt.lo, tt.hi, tt.log, got, tt.want)
				break
			}
		}
	}
}

func TestNumber(t *testing.T) {
	for v, want := range map[float64]string{0: "0", 0.25: "0.25", 5: "5", 1500: "1.5k", 999: "999", 20000: "20k", 2.5e6: "2.5M"} {
		if got := Number(v); got != want {
			t.Errorf("Number(%v) = %q, want %q", v, got, want)
		}
	}
}

func TestCDF(t *testing.T) {
	s := CDF("x", []float64{3, 1, 2, 2})
	if want := []float64{1, 1, 2, 3}; !slices.Equal(s.X, want) {
		t.Errorf("X = %v, want %v", s.X, want)
	}
	if want := []float64{0, 25, 75, 100}; !slices.Equal(s.Y, want) {
		t.Errorf("Y = %v, want %v", s.Y, want)
	}
}

// TestSVG checks that a chart with every feature is well-formed XML and
// holds its labels.
func TestSVG(t *testing.T) {
	c := Chart{Title: "Throughput <& more>", XLabel: "clients", YLabel: "calls/s", LogX: true, LogY: true,
		Series: []Series{
			{Name: "GetStage", X: []float64{1, 4, 16, 64}, Y: []float64{900, 3000, 6000, 6500}, Points: true},
			{Name: "baseline with a long name that wraps", X: []float64{1, 4, 16, 64}, Y: []float64{2000, 0, math.NaN(), 13000}, Dashed: true},
			CDF("cdf", []float64{5, 7, 9}),
		},
		HRefs: []Ref{{Value: 20000, Label: "target"}}, VRefs: []Ref{{Value: 8, Label: "v"}}}
	svg := string(c.SVG())
	d := xml.NewDecoder(strings.NewReader(svg))
	for {
		_, err := d.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, svg)
		}
	}
	for _, want := range []string{"Throughput &lt;&amp; more&gt;", "GetStage", "target", "clients", "10k"} {
		if !strings.Contains(svg, want) {
			t.Errorf("the SVG lacks %q", want)
		}
	}
}
