package sfu_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/api"
	"github.com/ivsrt/ivsrt/sfu"
	"github.com/ivsrt/ivsrt/store/sqlite"
	"github.com/ivsrt/ivsrt/token"
)

// testTimeout bounds every wait of a test.
const testTimeout = 45 * time.Second

func testContext(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*testTimeout)
	t.Cleanup(cancel)
	return ctx
}

// harness is a whole server on 127.0.0.1: the media plane and the API
// over one SQLite store and one token issuer, behind one HTTP listener as
// `ivsrt serve` has them, and an SDK client of the API.
type harness struct {
	t      testing.TB
	url    string
	db     *sqlite.DB
	sfu    *sfu.Server
	client *ivsrealtime.Client
	http   *http.Client
	clock  *clock
	issuer *token.Issuer
	// subscriberCodecs, if set, are the only codecs subscribers offer
	// (by default pion's, RTX included).
	subscriberCodecs []webrtc.RTPCodecParameters
}

// clock is the time of the token issuer and the API, which a test may
// move forward to expire tokens.
type clock struct{ offset atomic.Int64 }

func (c *clock) Now() time.Time                  { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *clock) Advance(d time.Duration)         { c.offset.Add(int64(d)) }
func (c *clock) Since(t time.Time) time.Duration { return c.Now().Sub(t) }

// fastOptions shorten the server's timers so that tests of departures
// take seconds.
var fastOptions = []sfu.Option{
	sfu.WithRepublishGrace(3 * time.Second),
}

func newHarness(t testing.TB, opts ...sfu.Option) *harness {
	t.Helper()
	return newHarnessConfig(t, sfu.Config{UDPAddr: "127.0.0.1:0"}, opts...)
}

// newHarnessConfig is newHarness with a media configuration; its
// PublicURL is filled in.
func newHarnessConfig(t testing.TB, cfg sfu.Config, opts ...sfu.Option) *harness {
	t.Helper()
	ctx := testContext(t)
	dir := t.TempDir()
	logger := testLogger(t)

	db, err := sqlite.Open(ctx, filepath.Join(dir, "ivsrt.db"))
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	key, err := token.LoadOrCreateKey(filepath.Join(dir, "token-signing-key.pem"))
	if err != nil {
		t.Fatalf("create key: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	base := "http://" + ln.Addr().String()
	clk := &clock{}
	eventsURL, whipURL := api.EndpointURLs(base)
	issuer := token.NewIssuer(key, token.WithEventsURL(eventsURL), token.WithWHIPURL(whipURL), token.WithClock(clk.Now),
		token.WithPublicKeys(db))

	opts = append(append([]sfu.Option{sfu.WithLogger(logger)}, fastOptions...), opts...)
	cfg.PublicURL = base
	media, err := sfu.New(db, issuer, cfg, opts...)
	if err != nil {
		t.Fatalf("start media plane: %v", err)
	}
	apiServer, err := api.NewServer(db, issuer, &api.SigV4Verifier{Service: "ivs", Dev: true}, api.Config{
		Region:        "us-east-1",
		AccountID:     "123456789012",
		PublicURL:     base,
		PaginationKey: bytes.Repeat([]byte{7}, 32),
	}, api.WithMediaPlane(media), api.WithLogger(logger), api.WithClock(clk.Now), api.WithCompositor(media))
	if err != nil {
		t.Fatalf("start API: %v", err)
	}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if ivsrt.IsMediaPath(r.URL.Path) {
			media.ServeHTTP(w, r)
			return
		}
		apiServer.ServeHTTP(w, r)
	}))
	srv.Listener.Close()
	srv.Listener = ln
	srv.Start()
	t.Cleanup(func() {
		if err := media.Close(); err != nil {
			t.Errorf("close media plane: %v", err)
		}
		srv.Close()
		db.Close()
	})

	tr := &http.Transport{Proxy: nil}
	t.Cleanup(tr.CloseIdleConnections)
	httpClient := &http.Client{Transport: tr, Timeout: testTimeout}
	client := ivsrealtime.NewFromConfig(aws.Config{
		Region:           "us-east-1",
		Credentials:      credentials.NewStaticCredentialsProvider("AKIDTEST", "SECRETTEST", ""),
		RetryMaxAttempts: 1,
		HTTPClient:       httpClient,
	}, func(o *ivsrealtime.Options) { o.BaseEndpoint = aws.String(base) })
	return &harness{t: t, url: base, db: db, sfu: media, client: client, http: httpClient, clock: clk, issuer: issuer}
}

// testLogger logs to the test until it ends; pion goroutines that log
// late are dropped.
func testLogger(t testing.TB) *slog.Logger {
	w := &testWriter{t: t}
	t.Cleanup(w.stop) // registered first, so it runs last
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct {
	mu   sync.Mutex
	t    testing.TB
	done bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Logf("server: %s", bytes.TrimRight(p, "\n"))
	}
	return len(p), nil
}

func (w *testWriter) stop() {
	w.mu.Lock()
	w.done = true
	w.mu.Unlock()
}

// createStage creates a stage through the API.
func (h *harness) createStage(name string) string {
	h.t.Helper()
	out, err := h.client.CreateStage(testContext(h.t), &ivsrealtime.CreateStageInput{Name: aws.String(name)})
	if err != nil {
		h.t.Fatalf("CreateStage: %v", err)
	}
	return aws.ToString(out.Stage.Arn)
}

// token creates a participant token through the API; no capabilities
// means both.
func (h *harness) token(stage, userID string, caps ...types.ParticipantTokenCapability) *types.ParticipantToken {
	h.t.Helper()
	in := &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(stage), UserId: aws.String(userID),
		Attributes: map[string]string{"role": userID}}
	if len(caps) > 0 {
		in.Capabilities = caps
	}
	out, err := h.client.CreateParticipantToken(testContext(h.t), in)
	if err != nil {
		h.t.Fatalf("CreateParticipantToken: %v", err)
	}
	return out.ParticipantToken
}

// httpError is an error response of the media plane.
type httpError struct {
	Status  int
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *httpError) Error() string { return fmt.Sprintf("%d %s: %s", e.Status, e.Code, e.Message) }

// post sends an SDP offer to path with a bearer token; it returns the
// answer and the session URL, or the error response.
func (h *harness) post(path, tok, offer string) (answer, location string, err error) {
	req, err := http.NewRequestWithContext(testContext(h.t), http.MethodPost, h.url+path, strings.NewReader(offer))
	if err != nil {
		return "", "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := h.http.Do(req)
	if err != nil {
		return "", "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusCreated {
		e := &httpError{Status: resp.StatusCode}
		json.Unmarshal(body, e)
		return "", "", e
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/sdp" {
		return "", "", fmt.Errorf("answer Content-Type got %q, want application/sdp", ct)
	}
	return string(body), resp.Header.Get("Location"), nil
}

// delete ends a WHIP or WHEP session.
func (h *harness) delete(location string) int {
	h.t.Helper()
	req, _ := http.NewRequestWithContext(testContext(h.t), http.MethodDelete, location, nil)
	resp, err := h.http.Do(req)
	if err != nil {
		h.t.Fatalf("DELETE %s: %v", location, err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

// cuttableConn is a client's UDP socket whose network can vanish: once
// cut, nothing goes out and nothing comes in, and nobody is told.
type cuttableConn struct {
	net.PacketConn
	cut      atomic.Bool
	readWait atomic.Int64 // a pause before each read, to read slowly; nanoseconds
}

func (c *cuttableConn) WriteTo(p []byte, addr net.Addr) (int, error) {
	if c.cut.Load() {
		return len(p), nil
	}
	return c.PacketConn.WriteTo(p, addr)
}

func (c *cuttableConn) ReadFrom(p []byte) (int, net.Addr, error) {
	if d := c.readWait.Load(); d > 0 {
		time.Sleep(time.Duration(d))
	}
	for {
		n, addr, err := c.PacketConn.ReadFrom(p)
		if err != nil || !c.cut.Load() {
			return n, addr, err
		}
	}
}

// newClientPC returns a client peer connection on 127.0.0.1 only, with
// the given codecs (all of pion's defaults if none).
func newClientPC(t testing.TB, codecs ...webrtc.RTPCodecParameters) (*webrtc.PeerConnection, *cuttableConn) {
	t.Helper()
	return newClientPCOn(t, webrtc.NetworkTypeUDP4, codecs...)
}

// newClientPCOn is newClientPC over UDP or, for NetworkTypeTCP4, over
// ICE-TCP alone (active candidates).
func newClientPCOn(t testing.TB, network webrtc.NetworkType, codecs ...webrtc.RTPCodecParameters) (*webrtc.PeerConnection, *cuttableConn) {
	t.Helper()
	var me webrtc.MediaEngine
	if len(codecs) == 0 {
		if err := me.RegisterDefaultCodecs(); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range codecs {
		kind := webrtc.RTPCodecTypeVideo
		if strings.HasPrefix(c.MimeType, "audio/") {
			kind = webrtc.RTPCodecTypeAudio
		}
		if err := me.RegisterCodec(c, kind); err != nil {
			t.Fatal(err)
		}
	}
	var ir interceptor.Registry
	if err := webrtc.RegisterDefaultInterceptors(&me, &ir); err != nil {
		t.Fatal(err)
	}
	udp, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	conn := &cuttableConn{PacketConn: udp}
	logs := &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled}
	mux := webrtc.NewICEUDPMux(logs.NewLogger("ice"), conn)
	var se webrtc.SettingEngine
	se.LoggerFactory = logs
	se.SetICEUDPMux(mux)
	se.SetNetworkTypes([]webrtc.NetworkType{network})
	se.SetIncludeLoopbackCandidate(true)
	se.SetIPFilter(func(ip net.IP) bool { return ip.IsLoopback() })
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	pc, err := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithInterceptorRegistry(&ir), webrtc.WithSettingEngine(se)).
		NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		pc.Close()
		mux.Close()
	})
	return pc, conn
}

// offer creates pc's offer with every candidate.
func offer(t testing.TB, pc *webrtc.PeerConnection) string {
	t.Helper()
	o, err := pc.CreateOffer(nil)
	if err != nil {
		t.Fatalf("create offer: %v", err)
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(o); err != nil {
		t.Fatalf("set local description: %v", err)
	}
	select {
	case <-gathered:
	case <-time.After(testTimeout):
		t.Fatal("ICE gathering timed out")
	}
	return pc.LocalDescription().SDP
}

// connected returns a channel closed when pc connects, and one closed
// when it then fails or closes.
func watchState(pc *webrtc.PeerConnection) (connected, gone <-chan struct{}) {
	c, g := make(chan struct{}), make(chan struct{})
	var once1, once2 sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		switch s {
		case webrtc.PeerConnectionStateConnected:
			once1.Do(func() { close(c) })
		case webrtc.PeerConnectionStateFailed, webrtc.PeerConnectionStateClosed:
			once2.Do(func() { close(g) })
		}
	})
	return c, g
}

func wait(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(testTimeout):
		t.Fatalf("timed out waiting for %s", what)
	}
}

// eventually retries f until it returns nil or the test timeout passes.
func eventually(t testing.TB, what string, f func() error) {
	t.Helper()
	deadline := time.Now().Add(testTimeout)
	for {
		err := f()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %v", what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// wsClient is a client of the events WebSocket.
type wsClient struct {
	t      testing.TB
	conn   *websocket.Conn
	msgs   chan map[string]any
	closed chan struct{}
	err    error // the read error, once closed
}

// dialEvents opens the events WebSocket with the token in the query.
func (h *harness) dialEvents(tok string) *wsClient {
	return h.dialEventsURL(strings.Replace(h.url, "http", "ws", 1)+"/events?access_token="+tok, nil)
}

func (h *harness) dialEventsURL(u string, header http.Header) *wsClient {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	conn, _, err := websocket.Dial(ctx, u, &websocket.DialOptions{HTTPHeader: header, HTTPClient: h.http})
	if err != nil {
		h.t.Fatalf("dial events: %v", err)
	}
	c := &wsClient{t: h.t, conn: conn, msgs: make(chan map[string]any, 1024), closed: make(chan struct{})}
	go func() {
		defer close(c.closed)
		for {
			_, data, err := conn.Read(context.Background())
			if err != nil {
				c.err = err
				return
			}
			var m map[string]any
			if err := json.Unmarshal(data, &m); err != nil {
				c.err = fmt.Errorf("message %q: %w", data, err)
				return
			}
			select {
			case c.msgs <- m:
			default:
				c.err = errors.New("too many unread messages")
				conn.CloseNow()
				return
			}
		}
	}()
	h.t.Cleanup(func() { conn.CloseNow() })
	return c
}

// next returns the next message of the given type, skipping others.
func (c *wsClient) next(typ string) map[string]any {
	c.t.Helper()
	timeout := time.After(testTimeout)
	for {
		select {
		case m := <-c.msgs:
			if m["type"] == typ {
				return m
			}
		case <-c.closed:
			// Drain what came before the close.
			select {
			case m := <-c.msgs:
				if m["type"] == typ {
					return m
				}
				continue
			default:
			}
			c.t.Fatalf("events WebSocket closed (%v) while waiting for a %q message", c.err, typ)
		case <-timeout:
			c.t.Fatalf("timed out waiting for a %q message", typ)
		}
	}
}

// waitState returns the first stage state for which ok is true.
func (c *wsClient) waitState(what string, ok func(participants []map[string]any) bool) map[string]any {
	c.t.Helper()
	timeout := time.After(testTimeout)
	for {
		select {
		case <-timeout:
			c.t.Fatalf("timed out waiting for a state where %s", what)
		default:
		}
		m := c.next("state")
		var ps []map[string]any
		for _, p := range m["participants"].([]any) {
			ps = append(ps, p.(map[string]any))
		}
		if ok(ps) {
			return m
		}
	}
}

// waitClosed waits for the server to close the WebSocket and returns the
// close status and reason.
func (c *wsClient) waitClosed(within time.Duration) (websocket.StatusCode, string) {
	c.t.Helper()
	select {
	case <-c.closed:
	case <-time.After(within):
		c.t.Fatalf("events WebSocket still open after %v", within)
	}
	var ce websocket.CloseError
	if errors.As(c.err, &ce) {
		return ce.Code, ce.Reason
	}
	return -1, fmt.Sprint(c.err)
}

// participantIDs returns the ids in a state's participants, and which of
// them publish.
func participantIDs(ps []map[string]any) (all, publishing []string) {
	for _, p := range ps {
		id := p["participantId"].(string)
		all = append(all, id)
		if p["publishing"] == true {
			publishing = append(publishing, id)
		}
	}
	return all, publishing
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
