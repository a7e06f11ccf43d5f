package web

import (
	"os"
	"strings"
	"testing"

	"github.com/ivsrt/ivsrt"
)

// TestClientVersion: the browser client reports the version the server
// knows its clients by.
func TestClientVersion(t *testing.T) {
	js, err := os.ReadFile("client/ivsrt.js")
	if err != nil {
		t.Fatal(err)
	}
	if want := `export const SDK_VERSION = "` + ivsrt.ClientVersion + `";`; !strings.Contains(string(js), want) {
		t.Errorf("client/ivsrt.js does not say %s", want)
	}
}
