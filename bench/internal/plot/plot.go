// Package plot draws the benchmarks' charts as SVG: line charts with
// linear or logarithmic axes, several series, markers, step lines for
// distributions, reference lines for targets and a legend. It has no
// dependency beyond the standard library.
package plot

import (
	"fmt"
	"html"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Series is one line of a chart. Points with a NaN coordinate, or one
// that is not positive on a logarithmic axis, are left out and break the
// line.
type Series struct {
	Name   string
	X, Y   []float64
	Dashed bool
	Points bool // a marker at each point
	Step   bool // horizontal then vertical segments, for a distribution
	Color  string
}

// Ref is a reference line across the plot, a target for instance.
type Ref struct {
	Value float64
	Label string
}

// Chart is a line chart.
type Chart struct {
	Title          string
	XLabel, YLabel string
	LogX, LogY     bool
	Series         []Series
	HRefs, VRefs   []Ref // horizontal lines at y = Value, vertical at x = Value
	// Fixed ends of the axes; NaN or zero values (with Min == Max) are
	// taken from the data. A linear y axis starts at 0 unless the data
	// goes below.
	XMin, XMax, YMin, YMax float64
	Width, Height          int // 760 × 420 if zero
}

// palette is a set of colours that stay apart for most readers (Okabe-Ito
// with a few more).
var palette = []string{"#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#000000", "#999999", "#882255", "#44AA99"}

// Color returns the i-th colour of the palette.
func Color(i int) string { return palette[i%len(palette)] }

const (
	marginLeft   = 72
	marginTop    = 44
	marginBottom = 56
	legendWidth  = 200
	font         = `font-family="Helvetica, Arial, sans-serif"`
	// halo keeps a label readable over the lines it crosses.
	halo = `stroke="#ffffff" stroke-width="3" paint-order="stroke"`
)

// axis maps data to pixels along one direction.
type axis struct {
	lo, hi   float64 // data
	p0, p1   float64 // pixels
	log      bool
	ticks    []float64
	minor    []float64
	labelFmt func(float64) string
}

func (a axis) pos(v float64) float64 {
	lo, hi := a.lo, a.hi
	if a.log {
		v, lo, hi = math.Log10(v), math.Log10(lo), math.Log10(hi)
	}
	if hi == lo {
		return (a.p0 + a.p1) / 2
	}
	return a.p0 + (v-lo)/(hi-lo)*(a.p1-a.p0)
}

func (a axis) valid(v float64) bool {
	return !math.IsNaN(v) && !math.IsInf(v, 0) && (!a.log || v > 0)
}

// SVG renders the chart.
func (c *Chart) SVG() []byte {
	w, h := c.Width, c.Height
	if w == 0 {
		w = 760
	}
	if h == 0 {
		h = 420
	}
	hasLegend := len(c.Series) > 1 || (len(c.Series) == 1 && c.Series[0].Name != "")
	right := 24
	if hasLegend {
		right = legendWidth
	}
	x := axis{p0: marginLeft, p1: float64(w - right), log: c.LogX}
	y := axis{p0: float64(h - marginBottom), p1: marginTop, log: c.LogY}

	var xs, ys []float64
	for _, s := range c.Series {
		for i := range min(len(s.X), len(s.Y)) {
			if x.valid(s.X[i]) && y.valid(s.Y[i]) {
				xs = append(xs, s.X[i])
				ys = append(ys, s.Y[i])
			}
		}
	}
	for _, r := range c.HRefs {
		if y.valid(r.Value) {
			ys = append(ys, r.Value)
		}
	}
	for _, r := range c.VRefs {
		if x.valid(r.Value) {
			xs = append(xs, r.Value)
		}
	}
	x.lo, x.hi = bounds(xs, c.XMin, c.XMax, x.log, false)
	y.lo, y.hi = bounds(ys, c.YMin, c.YMax, y.log, true)
	x.ticks, x.minor, x.lo, x.hi = ticks(x.lo, x.hi, x.log, !(c.XMin < c.XMax))
	y.ticks, y.minor, y.lo, y.hi = ticks(y.lo, y.hi, y.log, !(c.YMin < c.YMax))

	var b strings.Builder
	fmt.Fprintf(&b, `<svg xmlns="http://www.w3.org/2000/svg" width="%d" height="%d" viewBox="0 0 %d %d" %s font-size="12">`+"\n", w, h, w, h, font)
	fmt.Fprintf(&b, `<rect width="%d" height="%d" fill="#ffffff"/>`+"\n", w, h)
	if c.Title != "" {
		fmt.Fprintf(&b, `<text x="%d" y="24" font-size="15" font-weight="bold">%s</text>`+"\n", marginLeft, esc(c.Title))
	}
	// Grid and ticks.
	for _, v := range y.minor {
		py := y.pos(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#f0f0f0"/>`+"\n", x.p0, py, x.p1, py)
	}
	for _, v := range x.minor {
		px := x.pos(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#f0f0f0"/>`+"\n", px, y.p0, px, y.p1)
	}
	for _, v := range y.ticks {
		py := y.pos(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#dddddd"/>`+"\n", x.p0, py, x.p1, py)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="end" dominant-baseline="middle" fill="#333333">%s</text>`+"\n", x.p0-6, py, Number(v))
	}
	for _, v := range x.ticks {
		px := x.pos(v)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#dddddd"/>`+"\n", px, y.p0, px, y.p1)
		fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" text-anchor="middle" fill="#333333">%s</text>`+"\n", px, y.p0+18, Number(v))
	}
	fmt.Fprintf(&b, `<rect x="%.1f" y="%.1f" width="%.1f" height="%.1f" fill="none" stroke="#666666"/>`+"\n", x.p0, y.p1, x.p1-x.p0, y.p0-y.p1)
	if c.XLabel != "" {
		fmt.Fprintf(&b, `<text x="%.1f" y="%d" text-anchor="middle">%s</text>`+"\n", (x.p0+x.p1)/2, h-14, esc(c.XLabel))
	}
	if c.YLabel != "" {
		fmt.Fprintf(&b, `<text transform="translate(16 %.1f) rotate(-90)" text-anchor="middle">%s</text>`+"\n", (y.p0+y.p1)/2, esc(c.YLabel))
	}
	// Reference lines; their labels go over the series.
	var labels strings.Builder
	for _, r := range c.HRefs {
		if !y.valid(r.Value) || r.Value < y.lo || r.Value > y.hi {
			continue
		}
		py := y.pos(r.Value)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#B22222" stroke-dasharray="2 3" stroke-width="1.2"/>`+"\n", x.p0, py, x.p1, py)
		fmt.Fprintf(&labels, `<text x="%.1f" y="%.1f" text-anchor="end" font-size="11" fill="#B22222" %s>%s</text>`+"\n", x.p1-4, py-4, halo, esc(r.Label))
	}
	for _, r := range c.VRefs {
		if !x.valid(r.Value) || r.Value < x.lo || r.Value > x.hi {
			continue
		}
		px := x.pos(r.Value)
		fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="#B22222" stroke-dasharray="2 3" stroke-width="1.2"/>`+"\n", px, y.p0, px, y.p1)
		fmt.Fprintf(&labels, `<text x="%.1f" y="%.1f" font-size="11" fill="#B22222" text-anchor="end" %s transform="rotate(-90 %.1f %.1f)">%s</text>`+"\n", px-4, y.p1+6, halo, px-4, y.p1+6, esc(r.Label))
	}
	// Series, clipped to the plot area.
	fmt.Fprintf(&b, `<clipPath id="plot"><rect x="%.1f" y="%.1f" width="%.1f" height="%.1f"/></clipPath>`+"\n", x.p0, y.p1, x.p1-x.p0, y.p0-y.p1)
	b.WriteString(`<g clip-path="url(#plot)">` + "\n")
	var markers strings.Builder // drawn unclipped, so that a point on an edge shows whole
	for i, s := range c.Series {
		color := s.Color
		if color == "" {
			color = Color(i)
		}
		dash := ""
		if s.Dashed {
			dash = ` stroke-dasharray="6 4"`
		}
		for _, seg := range segments(s, x, y) {
			if len(seg) > 1 {
				fmt.Fprintf(&b, `<polyline fill="none" stroke="%s" stroke-width="2"%s stroke-linejoin="round" points="%s"/>`+"\n", color, dash, strings.Join(seg, " "))
			}
		}
		if s.Points {
			for j := range min(len(s.X), len(s.Y)) {
				if x.valid(s.X[j]) && y.valid(s.Y[j]) && inside(x, s.X[j]) && inside(y, s.Y[j]) {
					fmt.Fprintf(&markers, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", x.pos(s.X[j]), y.pos(s.Y[j]), color)
				}
			}
		}
	}
	b.WriteString("</g>\n")
	b.WriteString(markers.String())
	b.WriteString(labels.String())
	// Legend, to the right of the plot.
	if hasLegend {
		lx := x.p1 + 16
		ly := y.p1 + 6
		for i, s := range c.Series {
			if s.Name == "" {
				continue
			}
			color := s.Color
			if color == "" {
				color = Color(i)
			}
			dash := ""
			if s.Dashed {
				dash = ` stroke-dasharray="6 4"`
			}
			fmt.Fprintf(&b, `<line x1="%.1f" y1="%.1f" x2="%.1f" y2="%.1f" stroke="%s" stroke-width="2"%s/>`+"\n", lx, ly, lx+24, ly, color, dash)
			if s.Points {
				fmt.Fprintf(&b, `<circle cx="%.1f" cy="%.1f" r="3.5" fill="%s"/>`+"\n", lx+12, ly, color)
			}
			lines := wrap(s.Name, 24)
			for k, l := range lines {
				fmt.Fprintf(&b, `<text x="%.1f" y="%.1f" dominant-baseline="middle">%s</text>`+"\n", lx+30, ly+float64(k)*14, esc(l))
			}
			ly += 8 + 14*float64(len(lines))
		}
	}
	b.WriteString("</svg>\n")
	return []byte(b.String())
}

// inside reports whether v lies within the axis' range.
func inside(a axis, v float64) bool {
	const eps = 1e-9
	return v >= a.lo-eps*math.Abs(a.lo) && v <= a.hi+eps*math.Abs(a.hi)
}

// segments returns the series' polyline points in pixels, broken where a
// point is left out.
func segments(s Series, x, y axis) [][]string {
	var segs [][]string
	var cur []string
	prevY := math.NaN()
	for i := range min(len(s.X), len(s.Y)) {
		if !x.valid(s.X[i]) || !y.valid(s.Y[i]) {
			if cur != nil {
				segs = append(segs, cur)
				cur = nil
			}
			prevY = math.NaN()
			continue
		}
		px, py := x.pos(s.X[i]), y.pos(s.Y[i])
		if s.Step && !math.IsNaN(prevY) {
			cur = append(cur, fmt.Sprintf("%.1f,%.1f", px, prevY))
		}
		cur = append(cur, fmt.Sprintf("%.1f,%.1f", px, py))
		prevY = py
	}
	if cur != nil {
		segs = append(segs, cur)
	}
	return segs
}

// bounds returns the data range of an axis, or the fixed one.
func bounds(vs []float64, fixedLo, fixedHi float64, log, fromZero bool) (lo, hi float64) {
	if fixedLo < fixedHi {
		return fixedLo, fixedHi
	}
	if len(vs) == 0 {
		if log {
			return 1, 10
		}
		return 0, 1
	}
	lo, hi = slices.Min(vs), slices.Max(vs)
	if !log && fromZero && lo > 0 {
		lo = 0
	}
	if lo == hi {
		if log {
			return lo / 2, hi * 2
		}
		if lo == 0 {
			return 0, 1
		}
		return lo - math.Abs(lo)/2, hi + math.Abs(hi)/2
	}
	return lo, hi
}

// ticks returns the labelled and the minor tick values of an axis; with
// extend, the axis' ends move out to the nearest ticks.
func ticks(lo, hi float64, log, extend bool) (major, minor []float64, nlo, nhi float64) {
	if log {
		a, z := math.Floor(math.Log10(lo)+1e-9), math.Ceil(math.Log10(hi)-1e-9)
		if extend {
			lo, hi = math.Pow(10, a), math.Pow(10, z)
		}
		decades := z - a
		for e := a; e <= z; e++ {
			base := math.Pow(10, e)
			for _, m := range []float64{1, 2, 3, 4, 5, 6, 7, 8, 9} {
				v := m * base
				if v < lo*(1-1e-9) || v > hi*(1+1e-9) {
					continue
				}
				switch {
				case m == 1, decades <= 2 && (m == 2 || m == 5), decades <= 1 && m != 1:
					major = append(major, v)
				default:
					minor = append(minor, v)
				}
			}
		}
		return major, minor, lo, hi
	}
	step := niceStep((hi - lo) / 5)
	if extend {
		lo = math.Floor(lo/step+1e-9) * step
		hi = math.Ceil(hi/step-1e-9) * step
	}
	for v := math.Ceil(lo/step-1e-9) * step; v <= hi+step*1e-9; v += step {
		major = append(major, cleanZero(v))
	}
	return major, nil, lo, hi
}

func cleanZero(v float64) float64 {
	if math.Abs(v) < 1e-12 {
		return 0
	}
	return v
}

// niceStep rounds a step up to 1, 2 or 5 times a power of ten.
func niceStep(raw float64) float64 {
	if raw <= 0 || math.IsNaN(raw) {
		return 1
	}
	p := math.Pow(10, math.Floor(math.Log10(raw)))
	for _, m := range []float64{1, 2, 5, 10} {
		if m*p >= raw*(1-1e-9) {
			return m * p
		}
	}
	return 10 * p
}

// Number formats a tick label: short, with k and M for thousands and
// millions.
func Number(v float64) string {
	a := math.Abs(v)
	switch {
	case a >= 1e6:
		return trim(v/1e6) + "M"
	case a >= 1e3:
		return trim(v/1e3) + "k"
	}
	return trim(v)
}

func trim(v float64) string {
	s := strconv.FormatFloat(v, 'f', 3, 64)
	s = strings.TrimRight(s, "0")
	return strings.TrimSuffix(s, ".")
}

func esc(s string) string { return html.EscapeString(s) }

// wrap breaks s into lines of at most n characters, at spaces.
func wrap(s string, n int) []string {
	var lines []string
	line := ""
	for _, w := range strings.Fields(s) {
		if line != "" && len([]rune(line))+1+len([]rune(w)) > n {
			lines = append(lines, line)
			line = w
			continue
		}
		if line != "" {
			line += " "
		}
		line += w
	}
	if line != "" || len(lines) == 0 {
		lines = append(lines, line)
	}
	return lines
}

// CDF returns the cumulative distribution of samples as a step series:
// the share of the samples at or below each value, in percent.
func CDF(name string, samples []float64) Series {
	s := slices.Clone(samples)
	slices.Sort(s)
	out := Series{Name: name, Step: true}
	if len(s) == 0 {
		return out
	}
	out.X = append(out.X, s[0])
	out.Y = append(out.Y, 0)
	for i, v := range s {
		if i+1 < len(s) && s[i+1] == v {
			continue
		}
		out.X = append(out.X, v)
		out.Y = append(out.Y, 100*float64(i+1)/float64(len(s)))
	}
	return out
}
