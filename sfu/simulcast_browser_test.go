package sfu_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/ivsrt/ivsrt/sfu/internal/lossy"
	"github.com/ivsrt/ivsrt/web"
	"github.com/ivsrt/ivsrt/web/webtest"
)

// simulcastPage publishes or watches with the browser client. Watching,
// it keeps the time and width of every frame the video element presents,
// and sends its media through a proxy: the server's candidate in each
// answer is replaced by the proxy's address.
const simulcastPage = `<!doctype html>
<html><body>
<video id="v" autoplay muted playsinline style="width:1280px;height:720px"></video>
<script type="module">
import { Stage } from "/client/ivsrt.js";
window.frames = [];
window.publish = (token) => {
  const stage = new Stage(token, { subscribe: false, video: { width: 1280, height: 720, frameRate: 30 } });
  stage.join();
  window.stage = stage;
};
window.watch = (token, server, proxy) => {
  const setRemote = RTCPeerConnection.prototype.setRemoteDescription;
  RTCPeerConnection.prototype.setRemoteDescription = function (desc) {
    if (desc && desc.type === "answer") {
      desc = { type: "answer", sdp: desc.sdp.split(" " + server + " typ host").join(" " + proxy + " typ host") };
    }
    return setRemote.call(this, desc);
  };
  // The server learns the page's address only from what comes through
  // the proxy: the offers go without candidates.
  const send = window.fetch;
  window.fetch = (url, init) => {
    if (init && typeof init.body === "string" && /^a=candidate:/m.test(init.body)) {
      init = { ...init, body: init.body.split(/\r?\n/).filter((l) => !l.startsWith("a=candidate:")).join("\r\n") };
    }
    return send(url, init);
  };
  const stage = new Stage(token, { publish: false });
  const video = document.getElementById("v");
  stage.on("streamadded", ({ participant, stream }) => {
    if (participant.isLocal) return;
    video.srcObject = stream;
    const frame = (now, meta) => {
      window.frames.push([now, meta.width]);
      video.requestVideoFrameCallback(frame);
    };
    video.requestVideoFrameCallback(frame);
  });
  stage.join();
  window.stage = stage;
};
// What the frames presented since from (page time, ms) say: the width of
// the last, the frame rate over the last second, the longest gap.
window.frameStats = (from) => {
  const fs = window.frames.filter((f) => f[0] >= from);
  const now = performance.now();
  let gap = 0, gapEnd = 0;
  for (let i = 1; i < fs.length; i++) {
    if (fs[i][0] - fs[i - 1][0] > gap) [gap, gapEnd] = [fs[i][0] - fs[i - 1][0], fs[i][0]];
  }
  if (fs.length && now - fs[fs.length - 1][0] > gap) [gap, gapEnd] = [now - fs[fs.length - 1][0], now];
  let switches = 0;
  for (let i = 1; i < fs.length; i++) if (fs[i][1] !== fs[i - 1][1]) switches++;
  return JSON.stringify({
    now, width: fs.length ? fs[fs.length - 1][1] : 0, gap, gapEnd, switches,
    fps: window.frames.filter((f) => f[0] >= now - 1000).length,
  });
};
</script>
</body></html>`

type frameStats struct {
	Now    float64 `json:"now"`
	Width  int     `json:"width"`
	Gap    float64 `json:"gap"`    // ms
	GapEnd float64 `json:"gapEnd"` // when it ended, page time
	// Switches counts the changes of width from one frame to the next.
	Switches int `json:"switches"`
	FPS      int `json:"fps"`
}

// TestRealtimeBrowserSimulcastCappedLink: a Chromium page publishes its camera in
// three layers; another page watches through a link that is then capped
// to 400 kb/s. It gets the lowest layer at 15 frames a second or more,
// stays below the highest without swinging between layers, and once the
// cap is lifted it is back on the highest. How soon, and the longest wait
// between two frames, are measured and logged, not judged: a timed
// assertion on a shared machine fails with its neighbours' load (the
// bounds here are for liveness). Each run logs its figures beside the
// targets: under 5 s down, 12 frames a second or more under the cap,
// under 15 s back up, no frame more than 500 ms after the one before.
func TestRealtimeBrowserSimulcastCappedLink(t *testing.T) {
	if raceEnabled {
		t.Skip("a real-time link's timing, judged without the race detector: see README.md")
	}
	h := newHarness(t)
	stage := h.createStage("simulcast")
	pubTok := h.token(stage, "camera")
	subTok := h.token(stage, "viewer")

	server := h.sfu.UDPAddr().(*net.UDPAddr)
	proxy, err := lossy.New(server.String(), 1)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()

	client, err := web.NewHandler(web.Config{PublicURL: h.url})
	if err != nil {
		t.Fatal(err)
	}
	pages := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/page" {
			w.Header().Set("Content-Type", "text/html; charset=utf-8")
			w.Write([]byte(simulcastPage))
			return
		}
		client.ServeHTTP(w, r)
	}))
	defer pages.Close()

	b := webtest.NewBrowser(t)
	// Longer than most browser tests: the layers climb, fall and climb
	// again on a schedule of their own.
	deadline, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b.Deadline = deadline
	pub := b.NewTab("publisher")
	pub.Navigate(pages.URL + "/page")
	pub.WaitFor("the page's script", `typeof window.publish === "function"`, 10*time.Second)
	webtest.Eval[any](pub, fmt.Sprintf(`window.publish(%q)`, aws.ToString(pubTok.Token)))

	sub := b.NewTab("viewer")
	sub.Navigate(pages.URL + "/page")
	sub.WaitFor("the page's script", `typeof window.watch === "function"`, 10*time.Second)
	webtest.Eval[any](sub, fmt.Sprintf(`window.watch(%q, %q, %q)`, aws.ToString(subTok.Token),
		fmt.Sprint(server.Port), fmt.Sprint(proxy.Addr().Port)))

	stats := func(from float64) frameStats {
		var s frameStats
		if err := json.Unmarshal([]byte(webtest.Eval[string](sub, fmt.Sprintf(`window.frameStats(%f)`, from))), &s); err != nil {
			t.Fatal(err)
		}
		return s
	}
	waitUntil := func(what string, within time.Duration, from float64, ok func(frameStats) bool) frameStats {
		t.Helper()
		deadline := time.Now().Add(within)
		for {
			s := stats(from)
			if ok(s) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s: not within %v; last: %+v", what, within, s)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}

	// Uncapped, the viewer gets the full 1280×720 layer.
	waitUntil("the highest layer before the cap", 40*time.Second, 0, func(s frameStats) bool { return s.Width == 1280 && s.FPS >= 15 })
	time.Sleep(2 * time.Second)
	capped := stats(0).Now
	proxy.SetLink(lossy.Down, lossy.Link{Rate: 400_000, Queue: 500 * time.Millisecond})
	low := waitUntil("the lowest layer at 15 fps under the 400 kb/s cap", 20*time.Second, capped,
		func(s frameStats) bool { return s.Width == 320 && s.FPS >= 15 })
	t.Logf("capped at 400 kb/s: lowest layer at %d fps after %.0f ms (target: under 5000 ms)", low.FPS, low.Now-capped)

	// It stays under the highest layer, without swinging between layers:
	// it may move up once to the middle one if its bitrate fits the cap
	// (the fake camera's picture is simple, and its 640×360 layer takes
	// 250 to 450 kb/s), but not back and forth.
	minFPS := 1000
	for range 8 {
		time.Sleep(time.Second)
		s := stats(low.Now)
		if s.Width == 1280 || s.Switches > 1 {
			t.Errorf("under the cap: %+v, want a lower layer, changed at most once", s)
		}
		minFPS = min(minFPS, s.FPS)
	}
	lifted := stats(0).Now
	proxy.SetLink(lossy.Down, lossy.Link{})
	high := waitUntil("the highest layer again once the cap is lifted", 60*time.Second, lifted,
		func(s frameStats) bool { return s.Width == 1280 })
	all := stats(capped)
	t.Logf("under the cap: %d frames a second at the least (target: 12 or more); cap lifted: highest layer again after %.0f ms (target: under 15000 ms)",
		minFPS, high.Now-lifted)
	t.Logf("longest gap between frames from the cap on: %.0f ms, %.0f ms after the cap (lifted after %.0f ms) (target: 500 ms at most)",
		all.Gap, all.GapEnd-capped, lifted-capped)
	ms := h.sfu.MediaStats()
	t.Logf("server: %d padding packets, %d layer switches", ms.Padding, ms.LayerSwitches)
	down, up := proxy.Stats(lossy.Down), proxy.Stats(lossy.Up)
	t.Logf("down the proxy: %d datagrams, %d dropped at the queue, %d sent again, longest queueing %v; up: %d NACKs, %d PLIs",
		down.Datagrams, down.QueueDropped, down.Repeats, down.MaxQueueDelay, up.NACKs, up.PLIs)
}
