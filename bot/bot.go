// Package bot is a synthetic participant of a stage, for testing apps and
// load without a camera: it joins with a participant token over the
// events WebSocket, publishes a generated test pattern (VP8) and tone
// (Opus) over WHIP, subscribes to the other publishers over WHEP, and
// counts what it sends and receives.
package bot

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/ice/v4"
	"github.com/pion/interceptor"
	"github.com/pion/logging"
	"github.com/pion/webrtc/v4"
	"github.com/pion/webrtc/v4/pkg/media"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/clientinfo"
)

// Config is what a bot does.
type Config struct {
	// Token is the participant token the bot joins with.
	Token string
	// Index tells bots of one run apart (the colour of the pattern's box).
	Index int
	// Video and Audio choose what the bot publishes; with neither it does
	// not publish. A token without PUBLISH does not publish either.
	Video, Audio bool
	// Width, Height and FPS of the test pattern; 320×240 at 30 by default.
	Width, Height, FPS int
	// Subscribe makes the bot subscribe to every other publisher.
	Subscribe bool
	// HTTPClient makes the WHIP, WHEP and WebSocket requests.
	HTTPClient *http.Client
	// Logger, if set, gets what goes wrong along the way.
	Logger *slog.Logger
}

// Bot is one synthetic participant.
type Bot struct {
	cfg    Config
	claims claims
	log    *slog.Logger
	http   *http.Client
	api    *webrtc.API

	mu       sync.Mutex
	stats    Stats
	subs     map[string]*subscription
	started  time.Time
	whipLoc  string
	pub      *webrtc.PeerConnection
	whepBase string

	sentVideoFrames, sentVideoBytes, sentAudioPackets, sentAudioBytes atomic.Int64
	sentSince                                                         atomic.Int64 // Unix nanoseconds of the first media sent; 0 before
}

// claims are what a bot reads from its token (without verifying it: the
// server does).
type claims struct {
	ParticipantID string `json:"jti"`
	StageARN      string `json:"resource"`
	EventsURL     string `json:"events_url"`
	WHIPURL       string `json:"whip_url"`
	UserID        string `json:"user_id"`
	Capabilities  struct {
		Publish   bool `json:"allow_publish"`
		Subscribe bool `json:"allow_subscribe"`
	} `json:"capabilities"`
}

func readClaims(token string) (claims, error) {
	var c claims
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		return c, errors.New("the token is not a JWT")
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return c, fmt.Errorf("the token's payload: %w", err)
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return c, fmt.Errorf("the token's claims: %w", err)
	}
	if c.EventsURL == "" || c.WHIPURL == "" {
		return c, errors.New("the token has no events_url or whip_url claim")
	}
	return c, nil
}

// New checks the configuration and returns a bot ready to run.
func New(cfg Config) (*Bot, error) {
	c, err := readClaims(cfg.Token)
	if err != nil {
		return nil, err
	}
	if cfg.Width == 0 {
		cfg.Width, cfg.Height = 320, 240
	}
	if cfg.FPS <= 0 {
		cfg.FPS = 30
	}
	if cfg.HTTPClient == nil {
		cfg.HTTPClient = &http.Client{Timeout: 30 * time.Second}
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	api, err := newAPI()
	if err != nil {
		return nil, err
	}
	b := &Bot{cfg: cfg, claims: c, log: log.With("bot", cfg.Index, "participant", c.ParticipantID),
		http: cfg.HTTPClient, api: api, subs: map[string]*subscription{}}
	b.stats = Stats{Index: cfg.Index, ParticipantID: c.ParticipantID, UserID: c.UserID, StageARN: c.StageARN, State: StateJoining}
	return b, nil
}

// newAPI is pion with the codecs ivsrt forwards: VP8 and H.264 video, Opus
// audio, the default interceptors (NACK, reports), on every interface
// including loopback (a server on 127.0.0.1), without mDNS.
func newAPI() (*webrtc.API, error) {
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		return nil, err
	}
	var ir interceptor.Registry
	if err := webrtc.RegisterDefaultInterceptors(&me, &ir); err != nil {
		return nil, err
	}
	var se webrtc.SettingEngine
	se.LoggerFactory = &logging.DefaultLoggerFactory{Writer: io.Discard, DefaultLogLevel: logging.LogLevelDisabled}
	se.SetIncludeLoopbackCandidate(true)
	se.SetICEMulticastDNSMode(ice.MulticastDNSModeDisabled)
	se.SetNetworkTypes([]webrtc.NetworkType{webrtc.NetworkTypeUDP4, webrtc.NetworkTypeUDP6, webrtc.NetworkTypeTCP4, webrtc.NetworkTypeTCP6})
	return webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithInterceptorRegistry(&ir), webrtc.WithSettingEngine(se)), nil
}

// Run joins the stage and stays until ctx ends or the server ends the
// participant; it then leaves, ending its sessions. It returns why it
// stopped, nil when ctx ended it.
func (b *Bot) Run(ctx context.Context) error {
	err := b.run(ctx)
	b.leave()
	b.mu.Lock()
	if err != nil {
		b.stats.State, b.stats.Error = StateFailed, err.Error()
	} else {
		b.stats.State = StateLeft
	}
	b.mu.Unlock()
	return err
}

func (b *Bot) run(ctx context.Context) error {
	b.mu.Lock()
	b.started = time.Now()
	b.mu.Unlock()
	header := http.Header{"Authorization": {"Bearer " + b.cfg.Token}}
	sayWho(header)
	conn, _, err := websocket.Dial(ctx, b.claims.EventsURL, &websocket.DialOptions{HTTPHeader: header, HTTPClient: b.http})
	if err != nil {
		return fmt.Errorf("join: %w", err)
	}
	defer conn.CloseNow()
	conn.SetReadLimit(4 << 20)

	msgs := make(chan map[string]any, 16)
	readErr := make(chan error, 1)
	go func() {
		for {
			_, data, err := conn.Read(ctx)
			if err != nil {
				readErr <- err
				close(msgs)
				return
			}
			var m map[string]any
			if json.Unmarshal(data, &m) == nil {
				msgs <- m
			}
		}
	}()

	published := false
	for {
		select {
		case <-ctx.Done():
			conn.Close(websocket.StatusNormalClosure, "bot leaving")
			return nil
		case m, ok := <-msgs:
			if !ok {
				err := <-readErr
				if ctx.Err() != nil {
					return nil
				}
				return fmt.Errorf("events WebSocket closed: %w", err)
			}
			switch m["type"] {
			case "joined":
				whep, _ := m["whepUrl"].(string)
				session, _ := m["sessionId"].(string)
				b.mu.Lock()
				b.whepBase = whep
				b.stats.SessionID = session
				b.stats.State = StateJoined
				b.mu.Unlock()
				if !published && (b.cfg.Video || b.cfg.Audio) && b.claims.Capabilities.Publish {
					published = true
					if err := b.publish(ctx); err != nil {
						return fmt.Errorf("publish: %w", err)
					}
				}
			case "state":
				if b.cfg.Subscribe && b.claims.Capabilities.Subscribe {
					b.follow(ctx, m)
				}
			case "error", "disconnected":
				code, _ := m["code"].(string)
				msg, _ := m["message"].(string)
				return fmt.Errorf("the server ended the participant: %s: %s", code, msg)
			}
		}
	}
}

// exchange posts an SDP offer to a WHIP or WHEP URL and returns the answer
// and the session's URL.
func (b *Bot) exchange(ctx context.Context, target string, pc *webrtc.PeerConnection) (string, error) {
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		return "", err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		return "", err
	}
	select {
	case <-gathered:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, target, strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/sdp")
	req.Header.Set("Authorization", "Bearer "+b.cfg.Token)
	sayWho(req.Header)
	resp, err := b.http.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusCreated {
		var e struct{ Code, Message string }
		json.Unmarshal(body, &e)
		return "", fmt.Errorf("%s: %d %s: %s", target, resp.StatusCode, e.Code, e.Message)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		return "", err
	}
	loc := resp.Header.Get("Location")
	if u, err := url.Parse(target); err == nil && loc != "" {
		if l, err := u.Parse(loc); err == nil {
			loc = l.String()
		}
	}
	return loc, nil
}

// publish starts the WHIP session and the goroutines that send media.
func (b *Bot) publish(ctx context.Context) error {
	pc, err := b.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.pub = pc
	b.mu.Unlock()
	var video, audio *webrtc.TrackLocalStaticSample
	add := func(c webrtc.RTPCodecCapability, id string) (*webrtc.TrackLocalStaticSample, error) {
		track, err := webrtc.NewTrackLocalStaticSample(c, id, b.claims.ParticipantID)
		if err != nil {
			return nil, err
		}
		tr, err := pc.AddTransceiverFromTrack(track, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionSendonly})
		if err != nil {
			return nil, err
		}
		go func() { // RTCP must be read for the interceptors to work
			buf := make([]byte, 1500)
			for {
				if _, _, err := tr.Sender().Read(buf); err != nil {
					return
				}
			}
		}()
		return track, nil
	}
	if b.cfg.Video {
		if video, err = add(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8, ClockRate: 90000}, "video"); err != nil {
			return err
		}
	}
	if b.cfg.Audio {
		if audio, err = add(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeOpus, ClockRate: 48000, Channels: 2}, "audio"); err != nil {
			return err
		}
	}
	connected := make(chan struct{})
	var once sync.Once
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateConnected {
			once.Do(func() { close(connected) })
		}
	})
	loc, err := b.exchange(ctx, b.claims.WHIPURL, pc)
	if err != nil {
		return err
	}
	b.mu.Lock()
	b.whipLoc = loc
	b.mu.Unlock()
	go func() {
		select {
		case <-connected:
		case <-ctx.Done():
			return
		}
		b.mu.Lock()
		b.stats.State = StatePublishing
		b.mu.Unlock()
		if video != nil {
			go b.sendVideo(ctx, video)
		}
		if audio != nil {
			go b.sendAudio(ctx, audio)
		}
	}()
	return nil
}

func (b *Bot) sendVideo(ctx context.Context, track *webrtc.TrackLocalStaticSample) {
	pattern, err := NewPattern(b.cfg.Width, b.cfg.Height, b.cfg.Index)
	if err != nil {
		b.log.Warn("video", "err", err)
		return
	}
	interval := time.Second / time.Duration(b.cfg.FPS)
	tick := time.NewTicker(interval)
	defer tick.Stop()
	for n := 0; ; n++ {
		frame, err := pattern.Frame(n)
		if err != nil {
			b.log.Warn("encode video", "err", err)
			return
		}
		if err := track.WriteSample(media.Sample{Data: frame, Duration: interval}); err != nil {
			return
		}
		b.markSent()
		b.sentVideoFrames.Add(1)
		b.sentVideoBytes.Add(int64(len(frame)))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// markSent notes when the first media was sent, before it is counted.
func (b *Bot) markSent() {
	if b.sentSince.Load() == 0 {
		b.sentSince.CompareAndSwap(0, time.Now().UnixNano())
	}
}

func (b *Bot) sendAudio(ctx context.Context, track *webrtc.TrackLocalStaticSample) {
	packets, err := Tone()
	if err != nil {
		b.log.Warn("audio", "err", err)
		return
	}
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for n := 0; ; n++ {
		p := packets[n%len(packets)]
		if err := track.WriteSample(media.Sample{Data: p, Duration: 20 * time.Millisecond}); err != nil {
			return
		}
		b.markSent()
		b.sentAudioPackets.Add(1)
		b.sentAudioBytes.Add(int64(len(p)))
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
	}
}

// subscription is a WHEP session to one publisher.
type subscription struct {
	pc       *webrtc.PeerConnection
	location string
	cancel   context.CancelFunc
	stats    *remoteCounters
}

// follow subscribes to publishers that appeared in a stage state and
// ends the subscriptions to those that stopped.
func (b *Bot) follow(ctx context.Context, state map[string]any) {
	publishing := map[string]string{}
	list, _ := state["participants"].([]any)
	for _, x := range list {
		p, _ := x.(map[string]any)
		id, _ := p["participantId"].(string)
		if id == "" || id == b.claims.ParticipantID || p["publishing"] != true {
			continue
		}
		user, _ := p["userId"].(string)
		publishing[id] = user
	}
	b.mu.Lock()
	var stale []*subscription
	for id, s := range b.subs {
		if _, ok := publishing[id]; !ok {
			stale = append(stale, s)
			delete(b.subs, id)
		}
	}
	var start []string
	for id := range publishing {
		if _, ok := b.subs[id]; !ok {
			start = append(start, id)
		}
	}
	whep := b.whepBase
	b.mu.Unlock()
	for _, s := range stale {
		b.endSubscription(s)
	}
	for _, id := range start {
		sctx, cancel := context.WithCancel(ctx)
		s := &subscription{cancel: cancel, stats: &remoteCounters{participantID: id, userID: publishing[id]}}
		b.mu.Lock()
		b.subs[id] = s
		b.mu.Unlock()
		go func() {
			if err := b.subscribe(sctx, whep+url.PathEscape(id), s); err != nil && sctx.Err() == nil {
				b.log.Warn("subscribe", "remote", id, "err", err)
				s.stats.setError(err)
			}
		}()
	}
}

func (b *Bot) subscribe(ctx context.Context, target string, s *subscription) error {
	pc, err := b.api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	b.mu.Lock()
	s.pc = pc
	b.mu.Unlock()
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			return err
		}
	}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		mime := tr.Codec().MimeType
		video := tr.Kind() == webrtc.RTPCodecTypeVideo
		s.stats.setCodec(video, mime)
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			s.stats.add(video, mime, pkt)
		}
	})
	loc, err := b.exchange(ctx, target, pc)
	if err != nil {
		pc.Close()
		return err
	}
	b.mu.Lock()
	s.location = loc
	b.mu.Unlock()
	return nil
}

// endSubscription ends a WHEP session.
func (b *Bot) endSubscription(s *subscription) {
	s.cancel()
	b.mu.Lock()
	pc, loc := s.pc, s.location
	b.mu.Unlock()
	if loc != "" {
		b.delete(loc)
	}
	if pc != nil {
		pc.Close()
	}
}

// leave ends the bot's sessions.
func (b *Bot) leave() {
	b.mu.Lock()
	subs := make([]*subscription, 0, len(b.subs))
	for _, s := range b.subs {
		subs = append(subs, s)
	}
	pub, loc := b.pub, b.whipLoc
	b.mu.Unlock()
	for _, s := range subs {
		b.endSubscription(s)
	}
	if loc != "" {
		b.delete(loc)
	}
	if pub != nil {
		pub.Close()
	}
}

func (b *Bot) delete(location string) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, location, nil)
	if err != nil {
		return
	}
	if resp, err := b.http.Do(req); err == nil {
		resp.Body.Close()
	}
}

// ParticipantID is the bot's participant id, from its token.
func (b *Bot) ParticipantID() string { return b.claims.ParticipantID }

// sayWho tells the server what the bot is, as browsers do with their
// User-Agent: GetParticipant shows it as the participant's browserName,
// browserVersion and sdkVersion.
func sayWho(h http.Header) {
	h.Set("User-Agent", "ivsrt-bot/"+ivsrt.ClientVersion)
	h.Set(clientinfo.SDKVersionHeader, ivsrt.ClientVersion)
}
