package clientinfo

import (
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/ivsrt/ivsrt"
)

func TestDescribe(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ua     string
		header string // SDK version header
		query  string // SDK version parameter
		want   ivsrt.ClientDetails
	}{
		{"Chrome on Windows", "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "", "1.4.0",
			ivsrt.ClientDetails{OSName: "Windows", OSVersion: "10.0", BrowserName: "Chrome", BrowserVersion: "131.0.0.0", SDKVersion: "1.4.0"}},
		{"Safari on macOS", "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15", "", "",
			ivsrt.ClientDetails{OSName: "MacOS", OSVersion: "10.15.7", BrowserName: "Safari", BrowserVersion: "17.1"}},
		{"Safari on iPhone", "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1_2 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1.2 Mobile/15E148 Safari/604.1", "", "",
			ivsrt.ClientDetails{OSName: "iOS", OSVersion: "17.1.2", BrowserName: "Safari", BrowserVersion: "17.1.2"}},
		{"Firefox on Linux", "Mozilla/5.0 (X11; Linux x86_64; rv:133.0) Gecko/20100101 Firefox/133.0", "", "",
			ivsrt.ClientDetails{OSName: "Linux", BrowserName: "Firefox", BrowserVersion: "133.0"}},
		{"Chrome on Android", "Mozilla/5.0 (Linux; Android 14; Pixel 8) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.6778.39 Mobile Safari/537.36", "", "",
			ivsrt.ClientDetails{OSName: "Android", OSVersion: "14", BrowserName: "Chrome", BrowserVersion: "131.0.6778.39"}},
		{"headless Chromium", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/131.0.6778.85 Safari/537.36", "", "",
			ivsrt.ClientDetails{OSName: "Linux", BrowserName: "Chrome", BrowserVersion: "131.0.6778.85"}},
		{"an encoder over WHIP", "Mozilla/5.0 (OBS-Studio/30.2.3; Windows NT 10.0; en-US)", "", "",
			ivsrt.ClientDetails{OSName: "Windows", OSVersion: "10.0", BrowserName: "OBS-Studio", BrowserVersion: "30.2.3"}},
		{"ffmpeg over WHIP", "Lavf/61.7.100", "", "",
			ivsrt.ClientDetails{BrowserName: "Lavf", BrowserVersion: "61.7.100"}},
		{"the bot", "ivsrt-bot/0.9.1", "0.9.1", "",
			ivsrt.ClientDetails{BrowserName: "ivsrt-bot", BrowserVersion: "0.9.1", SDKVersion: "0.9.1"}},
		{"nothing said", "", "", "", ivsrt.ClientDetails{}},
		{"what the API cannot hold is dropped", "evil<script>/1.0\"'", "1.0<>" + strings.Repeat("9", 300), "",
			ivsrt.ClientDetails{BrowserName: "evilscript", BrowserVersion: "1.0", SDKVersion: "1.0" + strings.Repeat("9", 125)}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := http.Header{}
			if tc.ua != "" {
				h.Set("User-Agent", tc.ua)
			}
			if tc.header != "" {
				h.Set(SDKVersionHeader, tc.header)
			}
			q := url.Values{}
			if tc.query != "" {
				q.Set(SDKVersionParam, tc.query)
			}
			got := Describe(h, q)
			if got != tc.want {
				t.Errorf("got  %+v\nwant %+v", got, tc.want)
			}
			for _, f := range []string{got.OSName, got.OSVersion, got.BrowserName, got.BrowserVersion, got.SDKVersion} {
				if len(f) > 128 || strings.Trim(f, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:; ") != "" {
					t.Errorf("%q breaks the API's pattern", f)
				}
			}
		})
	}
}

func FuzzDescribe(f *testing.F) {
	f.Add("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36", "1.0")
	f.Add("OBS-Studio/30.2.3 (linux)", "")
	f.Fuzz(func(t *testing.T, ua, sdk string) {
		got := Describe(http.Header{"User-Agent": {ua}, SDKVersionHeader: {sdk}}, nil)
		for _, v := range []string{got.OSName, got.OSVersion, got.BrowserName, got.BrowserVersion, got.SDKVersion} {
			if len(v) > 128 || strings.Trim(v, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.,:; ") != "" {
				t.Errorf("%q breaks the API's pattern", v)
			}
		}
	})
}
