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
