package main

import (
	"math"
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(n ...int) []time.Duration {
		var d []time.Duration
		for _, v := range n {
			d = append(d, time.Duration(v)*time.Millisecond)
		}
		return d
	}
	tests := []struct {
		samples []time.Duration
		q       float64
		want    time.Duration
	}{
		{nil, 0.5, 0},
		{ms(7), 0.5, 7 * time.Millisecond},
		{ms(7), 1, 7 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.5, 2 * time.Millisecond},
		{ms(1, 2, 3, 4), 0.9, 4 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.9, 9 * time.Millisecond},
		{ms(1, 2, 3, 4, 5, 6, 7, 8, 9, 10), 0.99, 10 * time.Millisecond},
		{ms(-3, 1, 2), 0, -3 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.samples, tt.q); got != tt.want {
			t.Errorf("percentile(%v, %v) = %v, want %v", tt.samples, tt.q, got, tt.want)
		}
	}
}

func TestMedian(t *testing.T) {
	nan := math.NaN()
	tests := []struct {
		xs   []float64
		want float64
	}{
		{[]float64{3, 1, 2}, 2},
		{[]float64{4, 1, 3, 2}, 2.5},
		{[]float64{nan, 5, 1}, 3},
		{[]float64{nan}, nan},
		{nil, nan},
	}
	for _, tt := range tests {
		got := median(tt.xs)
		if got != tt.want && !(math.IsNaN(got) && math.IsNaN(tt.want)) {
			t.Errorf("median(%v) = %v, want %v", tt.xs, got, tt.want)
		}
	}
}

func TestMedianTable(t *testing.T) {
	cols := []column{{"stages", ""}, {"rate", "%.0f"}, {"cpu", "%.2f"}}
	runs := []table{
		{cols: cols, rows: []row{{"1", []float64{100, 1}}, {"16", []float64{400, math.NaN()}}}},
		{cols: cols, rows: []row{{"1", []float64{300, 3}}, {"16", []float64{200, math.NaN()}}}},
		{cols: cols, rows: []row{{"1", []float64{200, 2}}, {"16", []float64{300, math.NaN()}}}},
	}
	got := medianTable(runs).String()
	want := "| stages | rate | cpu |\n|---|--:|--:|\n| 1 | 200 | 2.00 |\n| 16 | 300 | n/a |\n"
	if got != want {
		t.Errorf("got\n%s\nwant\n%s", got, want)
	}
	if !strings.Contains(got, "n/a") {
		t.Error("unknown values should print as n/a")
	}
}
