package layout

import (
	"slices"
	"testing"
)

func TestParticipantOrder(t *testing.T) {
	// p0 joined first, p5 last; the grid's tiles follow the order row by row.
	p := cameras(6)
	tests := []struct {
		name      string
		attribute string
		in        []Participant
		want      []string
	}{
		{
			name: "no attribute: arrival order",
			in:   p,
			want: []string{"p0", "p1", "p2", "p3", "p4", "p5"},
		},
		{
			name:      "the attribute configured but no one has it: arrival order",
			attribute: "seat",
			in:        p,
			want:      []string{"p0", "p1", "p2", "p3", "p4", "p5"},
		},
		{
			name:      "numeric, not lexicographic: 10 after 9, after 2",
			attribute: "seat",
			in:        []Participant{with(p[0], "seat", "10"), with(p[1], "seat", "9"), with(p[2], "seat", "2")},
			want:      []string{"p2", "p1", "p0"},
		},
		{
			name:      "negative values before positive",
			attribute: "seat",
			in:        []Participant{with(p[0], "seat", "1"), with(p[1], "seat", "0"), with(p[2], "seat", "-5")},
			want:      []string{"p2", "p1", "p0"},
		},
		{
			name:      "participants with a value before those without, who keep arrival order",
			attribute: "seat",
			in:        []Participant{p[0], with(p[1], "seat", "5"), p[2], with(p[3], "seat", "1")},
			want:      []string{"p3", "p1", "p0", "p2"},
		},
		{
			name:      "equal values: arrival order",
			attribute: "seat",
			in:        []Participant{with(p[0], "seat", "3"), with(p[1], "seat", "1"), with(p[2], "seat", "3"), with(p[3], "seat", "1")},
			want:      []string{"p1", "p3", "p0", "p2"},
		},
		{
			name:      "empty, non-numeric and fractional values count as none",
			attribute: "seat",
			in: []Participant{with(p[0], "seat", ""), with(p[1], "seat", "abc"), with(p[2], "seat", "1.5"),
				with(p[3], "seat", " 2"), with(p[4], "seat", "99999999999999999999"), with(p[5], "seat", "7")},
			want: []string{"p5", "p0", "p1", "p2", "p3", "p4"},
		},
		{
			name:      "another attribute's value is not the order",
			attribute: "seat",
			in:        []Participant{with(p[0], "rank", "9"), with(p[1], "seat", "9"), with(p[2], "rank", "1")},
			want:      []string{"p1", "p0", "p2"},
		},
		{
			name:      "a sign and leading zeros are still numbers",
			attribute: "seat",
			in:        []Participant{with(p[0], "seat", "+3"), with(p[1], "seat", "007"), with(p[2], "seat", "-0")},
			want:      []string{"p2", "p0", "p1"},
		},
		{
			name: "same arrival: by id",
			in:   []Participant{camera("b", 7, 640, 360), camera("c", 7, 640, 360), camera("a", 7, 640, 360)},
			want: []string{"a", "b", "c"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := Config{Grid: &Grid{ParticipantOrderAttribute: tt.attribute}}
			s := mustArrange(t, cfg, landscape, tt.in)
			if got := tileIDs(s); !slices.Equal(got, tt.want) {
				t.Errorf("got %v, want %v", got, tt.want)
			}
			// The PiP layout orders the same way: its grid behind the
			// window, and its window's pick, follow the order.
			pip := Config{PiP: &PiP{ParticipantOrderAttribute: tt.attribute}}
			ps := mustArrange(t, pip, landscape, tt.in)
			if len(tt.want) >= 2 && ps.PiP != tt.want[1] {
				t.Errorf("pip: window holds %q, want %q, the second in order", ps.PiP, tt.want[1])
			}
		})
	}
}

func TestOrderPicksAmongMarked(t *testing.T) {
	// Several participants marked featured (or PiP): the order picks one,
	// and the rest are placed like anyone else.
	p := cameras(4)
	in := []Participant{
		with(p[0], "star", "true", "seat", "3"),
		with(p[1], "star", "true", "seat", "2"),
		with(p[2], "guest", "true", "seat", "9"),
		with(p[3], "guest", "true", "seat", "8"),
	}
	grid := mustArrange(t, Config{Grid: &Grid{FeaturedParticipantAttribute: "star", ParticipantOrderAttribute: "seat"}}, landscape, in)
	if grid.Featured != "p1" {
		t.Errorf("grid: featured %q, want p1 (seat 2 before seat 3)", grid.Featured)
	}
	if got, want := tileIDs(grid), []string{"p1", "p0", "p3", "p2"}; !slices.Equal(got, want) {
		t.Errorf("grid: got %v, want %v", got, want)
	}
	pip := mustArrange(t, Config{PiP: &PiP{FeaturedParticipantAttribute: "star", PipParticipantAttribute: "guest",
		ParticipantOrderAttribute: "seat"}}, landscape, in)
	if pip.Featured != "p1" || pip.PiP != "p3" {
		t.Errorf("pip: featured %q and window %q, want p1 and p3", pip.Featured, pip.PiP)
	}
}
