package ivsrt

import "testing"

func TestBearerToken(t *testing.T) {
	for _, tc := range []struct{ header, want string }{
		{"Bearer abc", "abc"},
		{"bearer  abc", "abc"},
		{"BEARER abc ", "abc"},
		{"Basic abc", ""},
		{"Bearer", ""},
		{"Bearer ", ""},
		{"Bearerabc", ""},
		{" Bearer abc", ""},
		{"", ""},
	} {
		if got := BearerToken(tc.header); got != tc.want {
			t.Errorf("BearerToken(%q) = %q, want %q", tc.header, got, tc.want)
		}
	}
}

func TestMediaPaths(t *testing.T) {
	for _, tt := range []struct {
		path string
		want bool
	}{
		{"/events", true}, {"/whip", true}, {"/whip/n1.abc", true}, {"/whep/p1", true}, {"/whep/p1/n1.abc", true},
		{"/", false}, {"/CreateStage", false}, {"/eventsx", false}, {"/whipx", false}, {"/whep", false},
	} {
		if got := IsMediaPath(tt.path); got != tt.want {
			t.Errorf("IsMediaPath(%q) got %v, want %v", tt.path, got, tt.want)
		}
	}
	for _, tt := range []struct {
		path, authorization, accessToken, want string
	}{
		{"/events", "Bearer a.b.c", "x.y.z", "a.b.c"},
		{"/events", "", "x.y.z", "x.y.z"},
		{"/whip", "", "x.y.z", ""}, // only the events WebSocket reads the query
		{"/whip", "bearer a.b.c", "", "a.b.c"},
		{"/whep/p1", "Basic a.b.c", "", ""},
	} {
		if got := PresentedToken(tt.path, tt.authorization, tt.accessToken); got != tt.want {
			t.Errorf("PresentedToken(%q, %q, %q) got %q, want %q", tt.path, tt.authorization, tt.accessToken, got, tt.want)
		}
	}
}
