// Package clientinfo tells what a participant's client says of itself
// when it connects: the browser (or encoder) and operating system its
// User-Agent names, parsed with medama-io/go-useragent, and the version
// of the ivsrt client library it runs. Nothing is guessed: a client that
// says nothing gets empty fields. The ISP is not told by clients, so it
// stays empty.
package clientinfo

import (
	"net/http"
	"net/url"
	"regexp"
	"strings"

	"github.com/medama-io/go-useragent"
	"github.com/medama-io/go-useragent/agents"

	"github.com/ivsrt/ivsrt"
)

// SDKVersionHeader carries the version of the ivsrt client library on
// WHIP, WHEP and events WebSocket requests of clients that can set
// headers (the bot); SDKVersionParam carries it on the events
// WebSocket's URL, for browsers, which cannot.
const (
	SDKVersionHeader = "X-Ivsrt-Sdk-Version"
	SDKVersionParam  = "sdk_version"
)

// parser is built once: it loads the library's embedded definitions.
var parser = useragent.NewParser()

// Describe returns what a request's client says of itself.
func Describe(h http.Header, query url.Values) ivsrt.ClientDetails {
	var c ivsrt.ClientDetails
	sdk := h.Get(SDKVersionHeader)
	if sdk == "" {
		sdk = query.Get(SDKVersionParam)
	}
	c.SDKVersion = clean(sdk)
	ua := h.Get("User-Agent")
	if ua == "" {
		return c
	}
	agent := parser.Parse(ua)
	if b := agent.Browser(); b != "" {
		c.BrowserName, c.BrowserVersion = string(b), agent.BrowserVersion()
	} else {
		// Not a browser: an encoder (OBS, ffmpeg) or a program (the
		// bot) names itself in its first product token, "Name/1.2".
		c.BrowserName, c.BrowserVersion = product(ua)
	}
	if os := agent.OS(); os != "" {
		c.OSName = string(os)
		c.OSVersion = osVersion(os, ua)
	} else {
		// The library names the system of browser agents; others (an
		// encoder) say theirs in the same words.
		for _, os := range []agents.OS{agents.OSWindows, agents.OSMacOS, agents.OSIOS, agents.OSAndroid, agents.OSChromeOS} {
			if v := osVersion(os, ua); v != "" {
				c.OSName, c.OSVersion = string(os), v
				break
			}
		}
		if c.OSName == "" && strings.Contains(ua, "Linux") {
			c.OSName = string(agents.OSLinux)
		}
	}
	c.BrowserName, c.BrowserVersion = clean(c.BrowserName), clean(c.BrowserVersion)
	c.OSName, c.OSVersion = clean(c.OSName), clean(c.OSVersion)
	return c
}

// product returns the name and version of the first "Name/1.2" token of
// a User-Agent that is not the "Mozilla/5.0" every browser-like agent
// starts with: "OBS-Studio/30.2.3" of "Mozilla/5.0 (OBS-Studio/30.2.3;
// Linux x86_64)", "Lavf/61.7.100" of ffmpeg's.
func product(ua string) (name, version string) {
	for _, tok := range strings.FieldsFunc(ua, func(r rune) bool { return r == ' ' || r == '(' || r == ')' || r == ';' }) {
		n, v, ok := strings.Cut(tok, "/")
		if ok && n != "" && v != "" && n != "Mozilla" {
			return n, v
		}
	}
	return "", ""
}

// The operating system versions User-Agents carry, by system.
var osVersions = map[string]*regexp.Regexp{
	"Windows":  regexp.MustCompile(`Windows NT ([0-9.]+)`),
	"MacOS":    regexp.MustCompile(`Mac OS X ([0-9_.]+)`),
	"iOS":      regexp.MustCompile(`(?:iPhone|CPU) OS ([0-9_]+)`),
	"Android":  regexp.MustCompile(`Android ([0-9.]+)`),
	"ChromeOS": regexp.MustCompile(`CrOS \S+ ([0-9.]+)`),
}

// osVersion returns the version of os that ua gives, "" if none (Linux
// User-Agents give none).
func osVersion(os agents.OS, ua string) string {
	re := osVersions[string(os)]
	if re == nil {
		return ""
	}
	m := re.FindStringSubmatch(ua)
	if m == nil {
		return ""
	}
	return strings.ReplaceAll(m[1], "_", ".")
}

// maxLen bounds the API's ParticipantClientAttribute, which holds
// letters, digits, white space and -_.,:; only.
const maxLen = 128

// clean keeps what the API allows of s: what a client sends is its own.
func clean(s string) string {
	var b strings.Builder
	for _, r := range s {
		if b.Len() >= maxLen {
			break
		}
		switch {
		case r >= 'a' && r <= 'z', r >= 'A' && r <= 'Z', r >= '0' && r <= '9', strings.ContainsRune("-_.,:; ", r):
			b.WriteRune(r)
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		}
	}
	return strings.TrimSpace(b.String())
}
