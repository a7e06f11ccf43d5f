// Package webtest runs the pages of package web in headless Chromium for
// tests: a browser with a fake camera and microphone, tabs with storage of
// their own, the page's console in the test log, screenshots kept as
// artifacts.
package webtest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// ChromiumPath is where Debian installs Chromium; $CHROMIUM overrides it.
const ChromiumPath = "/usr/bin/chromium"

// Timeout bounds a whole browser test.
const Timeout = 60 * time.Second

// chromium returns the browser to run. Without one the test is skipped,
// except in CI (CI=true), where it fails.
func chromium(t testing.TB) string {
	t.Helper()
	path := os.Getenv("CHROMIUM")
	if path == "" {
		path = ChromiumPath
	}
	if p, err := exec.LookPath(path); err == nil {
		return p
	}
	if p, err := exec.LookPath("chromium"); err == nil {
		return p
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("chromium is not installed (looked for %s): CI must run the browser tests", path)
	}
	t.Skipf("chromium is not installed (looked for %s); skipping the browser test", path)
	return ""
}

// Browser is one headless Chromium process.
type Browser struct {
	t   testing.TB
	log *testLog
	ctx context.Context // the browser's own: its first tab
	// Deadline is the context the test's waits derive from: the browser
	// lives until the test ends, each wait until Timeout.
	Deadline context.Context
}

// NewBrowser starts headless Chromium with a fake camera and microphone
// that every page may use without asking, and closes it when the test
// ends. The test is skipped when Chromium is missing, unless CI=true.
// extra are more command-line flags.
func NewBrowser(t testing.TB, extra ...chromedp.ExecAllocatorOption) *Browser {
	t.Helper()
	if testing.Short() {
		t.Skip("browser test: skipped in -short mode")
	}
	path := chromium(t)
	// Registered first, so run last: the browser's goroutines may still
	// report something after the test, which must not reach its log.
	log := &testLog{t: t}
	t.Cleanup(log.close)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.Headless,
		chromedp.NoSandbox, // tests run as root in CI containers
		chromedp.NoFirstRun,
		chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.WindowSize(ViewportWidth, ViewportHeight),
		chromedp.Flag("use-fake-device-for-media-stream", true),
		chromedp.Flag("use-fake-ui-for-media-stream", true),
		chromedp.Flag("autoplay-policy", "no-user-gesture-required"),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		// The server under test listens on 127.0.0.1 only: let WebRTC
		// gather loopback candidates to reach it.
		chromedp.Flag("allow-loopback-in-peer-connection", true),
		chromedp.Flag("disable-features", "Translate,BlinkGenPropertyTrees,WebRtcHideLocalIpsWithMdns"),
	)
	opts = append(opts, extra...)
	allocCtx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelBrowser := chromedp.NewContext(allocCtx, chromedp.WithErrorf(func(format string, args ...any) {
		log.printf("chromedp: "+format, args...)
	}))
	t.Cleanup(func() {
		cancelBrowser()
		cancelAlloc()
	})
	// The first run starts the browser and binds it to ctx, which has no
	// deadline: the waits get theirs from Deadline.
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	deadline, cancel := context.WithTimeout(context.Background(), Timeout)
	t.Cleanup(cancel)
	return &Browser{t: t, log: log, ctx: ctx, Deadline: deadline}
}

// testLog is the test's log until the test ends, and silence after.
type testLog struct {
	t      testing.TB
	mu     sync.Mutex
	closed bool
}

func (l *testLog) printf(format string, args ...any) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !l.closed {
		l.t.Logf(format, args...)
	}
}

func (l *testLog) close() {
	l.mu.Lock()
	l.closed = true
	l.mu.Unlock()
}

// Tab is one page, in a browser context (profile) of its own.
type Tab struct {
	t    testing.TB
	Name string
	ctx  context.Context
	b    *Browser
}

// NewTab opens a tab with its own storage, cookies and permissions, as
// another person's browser would have. Its console messages and uncaught
// exceptions go to the test log, prefixed with name, and Content Security
// Policy violations are recorded (see CSPViolations).
func (b *Browser) NewTab(name string) *Tab {
	b.t.Helper()
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithNewBrowserContext(), chromedp.WithListener(func(ev any) {
		switch ev := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range ev.Args {
				parts = append(parts, remoteText(a))
			}
			b.log.printf("%s: console.%s: %s", name, ev.Type, strings.Join(parts, " "))
		case *runtime.EventExceptionThrown:
			d := ev.ExceptionDetails
			text := d.Text
			if d.Exception != nil && d.Exception.Description != "" {
				text += " " + d.Exception.Description
			}
			b.log.printf("%s: uncaught exception: %s (%s:%d)", name, text, d.URL, d.LineNumber)
		}
	}))
	b.t.Cleanup(cancel)
	tab := &Tab{t: b.t, Name: name, ctx: ctx, b: b}
	// Record CSP violations in the page itself, from before its scripts run.
	_, err := chromedp.Call(ctx, page.AddScriptToEvaluateOnNewDocument, page.AddScriptToEvaluateOnNewDocumentParams{
		Source: `window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (e) =>
  window.__cspViolations.push(e.violatedDirective + " blocked " + (e.blockedURI || "inline") + " at " + e.sourceFile + ":" + e.lineNumber));`,
	})
	if err != nil {
		b.t.Fatalf("%s: prepare tab: %v", name, err)
	}
	tab.Do("set the viewport", chromedp.EmulateViewport(ViewportWidth, ViewportHeight))
	return tab
}

// The size of a tab's viewport: a laptop's screen.
const (
	ViewportWidth  = 1440
	ViewportHeight = 900
)

func remoteText(o *runtime.RemoteObject) string {
	if o == nil {
		return ""
	}
	if len(o.Value) > 0 {
		var s string
		if json.Unmarshal(o.Value, &s) == nil {
			return s
		}
		return string(o.Value)
	}
	if o.Description != "" {
		return o.Description
	}
	return string(o.Type)
}

// Context returns the context to run chromedp actions on the tab with:
// the tab's, bounded by the browser's deadline.
func (tab *Tab) Context() context.Context {
	ctx, cancel := context.WithCancel(tab.ctx)
	stop := context.AfterFunc(tab.b.Deadline, cancel)
	tab.t.Cleanup(func() {
		stop()
		cancel()
	})
	return ctx
}

// Do runs actions on the tab, failing the test on an error.
func (tab *Tab) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	tab.t.Helper()
	if err := chromedp.Do(tab.Context(), actions...); err != nil {
		tab.t.Fatalf("%s: %s: %v", tab.Name, what, err)
	}
}

// Navigate opens url in the tab.
func (tab *Tab) Navigate(url string) {
	tab.t.Helper()
	tab.Do("navigate to "+url, chromedp.Navigate(url))
}

// Eval evaluates a JavaScript expression (awaiting a promise) and decodes
// its value into T, failing the test on an error.
func Eval[T any](tab *Tab, expression string) T {
	tab.t.Helper()
	v, err := chromedp.Run(tab.Context(), chromedp.Evaluate[T](expression, chromedp.EvalAwaitPromise))
	if err != nil {
		tab.t.Fatalf("%s: evaluate %s: %v", tab.Name, shorten(expression), err)
	}
	return v
}

// WaitFor polls a JavaScript expression until it is truthy, failing the
// test with what after timeout. The expression's last value is logged.
func (tab *Tab) WaitFor(what, expression string, timeout time.Duration) {
	tab.t.Helper()
	ctx, cancel := context.WithTimeout(tab.Context(), timeout)
	defer cancel()
	_, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expression,
		chromedp.WithPollingInterval(100*time.Millisecond), chromedp.WithPollingTimeout(timeout)))
	if err != nil {
		tab.t.Fatalf("%s: waiting for %s: %v", tab.Name, what, err)
	}
}

// CSPViolations returns the Content Security Policy violations the page
// reported since it loaded.
func (tab *Tab) CSPViolations() []string {
	tab.t.Helper()
	return Eval[[]string](tab, `window.__cspViolations || []`)
}

// Screenshot saves a PNG of the tab's viewport in ArtifactsDir and logs
// its path.
func (tab *Tab) Screenshot(name string) string {
	tab.t.Helper()
	buf, err := chromedp.Run(tab.Context(), chromedp.CaptureScreenshot())
	if err != nil {
		tab.t.Fatalf("%s: screenshot: %v", tab.Name, err)
	}
	return tab.save(name, buf)
}

// FullScreenshot is Screenshot of the whole page, however long, as on a
// screen tall enough to show it.
func (tab *Tab) FullScreenshot(name string) string {
	tab.t.Helper()
	height := Eval[int64](tab, `document.documentElement.scrollHeight`)
	tab.Do("grow the viewport", chromedp.EmulateViewport(ViewportWidth, max(height, ViewportHeight)))
	Eval[chromedp.Void](tab, `new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r)))`)
	buf, err := chromedp.Run(tab.Context(), chromedp.CaptureScreenshot())
	tab.Do("restore the viewport", chromedp.EmulateViewport(ViewportWidth, ViewportHeight))
	if err != nil {
		tab.t.Fatalf("%s: screenshot: %v", tab.Name, err)
	}
	return tab.save(name, buf)
}

func (tab *Tab) save(name string, buf []byte) string {
	tab.t.Helper()
	path := filepath.Join(ArtifactsDir(tab.t), name+".png")
	if err := os.WriteFile(path, buf, 0o644); err != nil {
		tab.t.Fatalf("write screenshot: %v", err)
	}
	tab.t.Logf("screenshot: %s", path)
	return path
}

// ArtifactsDir is where tests keep files for people to look at: the folder
// $IVSRT_ARTIFACTS names (created if missing), or else a temporary one.
func ArtifactsDir(t testing.TB) string {
	t.Helper()
	dir := os.Getenv("IVSRT_ARTIFACTS")
	if dir == "" {
		return t.TempDir()
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatalf("create artifacts folder: %v", err)
	}
	return dir
}

func shorten(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 120 {
		return s[:117] + "..."
	}
	return fmt.Sprintf("%q", s)
}
