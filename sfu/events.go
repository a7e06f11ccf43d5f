package sfu

import (
	"context"
	"encoding/json"
	"net/http"
	"sync"
	"time"

	"github.com/coder/websocket"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/clientinfo"
)

// Close codes of the events WebSocket besides the standard ones. They
// mirror HTTP statuses: 4401 the token was refused, 4403 the participant
// was disconnected, 4404 the stage was deleted, 4409 another WebSocket of
// the same participant took over.
const (
	closeShutdown     = int(websocket.StatusGoingAway)
	closeInternal     = int(websocket.StatusInternalError)
	closeRefused      = 4401
	closeDisconnected = 4403
	closeStageDeleted = 4404
	closeReplaced     = 4409
	closeEvicted      = 4503 // the stage moved to another node: join again
)

// writeTimeout bounds one message written to a WebSocket.
const writeTimeout = 5 * time.Second

// maxClientMessage bounds what a client may send on the WebSocket, and
// maxQueued the messages waiting to be written to it (besides the
// state): a client that pings faster than it reads loses pongs.
const (
	maxClientMessage = 8 << 10 // a token to exchange, with 1 KB of attributes, fits
	maxQueued        = 64
)

// joinedMessage is the first message of a joined WebSocket.
type joinedMessage struct {
	Type           string              `json:"type"`
	ParticipantID  ivsrt.ParticipantID `json:"participantId"`
	StageARN       ivsrt.StageARN      `json:"stageArn"`
	SessionID      ivsrt.SessionID     `json:"sessionId"`
	UserID         string              `json:"userId,omitempty"`
	Attributes     map[string]string   `json:"attributes"`
	Capabilities   []ivsrt.Capability  `json:"capabilities"`
	WHIPURL        string              `json:"whipUrl"`
	WHEPURL        string              `json:"whepUrl"`
	PingIntervalMS int64               `json:"pingIntervalMs"`
	// ICEServers are the TURN servers the client may relay through, to
	// give its peer connections (RTCConfiguration.iceServers).
	ICEServers []ivsrt.ICEServer `json:"iceServers,omitempty"`
}

// errorMessage tells a client why it was refused or disconnected, before
// the WebSocket closes.
type errorMessage struct {
	Type    string `json:"type"` // "error" or "disconnected"
	Code    string `json:"code"`
	Message string `json:"message"`
}

// serveEvents is the events WebSocket: it joins the participant of the
// token (an "Authorization: Bearer" header, or the access_token query
// parameter for browsers, which cannot set headers on a WebSocket), then
// pushes the stage state on every change until either side closes.
func (s *Server) serveEvents(w http.ResponseWriter, r *http.Request) {
	raw := ivsrt.PresentedToken(r.URL.Path, r.Header.Get("Authorization"), r.URL.Query().Get("access_token"))
	if !s.track() {
		writeRefusal(w, errShuttingDown)
		return
	}
	defer s.wg.Done()
	// Authentication is by token, not cookies: any origin may connect.
	conn, err := websocket.Accept(w, r, &websocket.AcceptOptions{InsecureSkipVerify: true})
	if err != nil {
		return // Accept answered
	}
	conn.SetReadLimit(maxClientMessage)
	// The request's context ends with the handler; the connection's
	// lifetime is the server's.
	ctx := context.WithoutCancel(r.Context())

	c, ref := s.verify(ctx, raw)
	if ref != nil {
		refuse(ctx, conn, ref)
		return
	}
	c.client = clientinfo.Describe(r.Header, r.URL.Query())
	st, ref := s.lockStage(c.tok.StageARN)
	if ref != nil {
		refuse(ctx, conn, ref)
		return
	}
	ec, p, ref := st.attachEvents(ctx, c, conn, s.resourceURL(r, ""))
	st.unlock()
	if ref != nil {
		refuse(ctx, conn, ref)
		return
	}

	ec.exchange = func(raw string) any { return s.exchangeToken(ctx, st, p.id, ec, raw) }
	ec.videoSize = func(remote ivsrt.ParticipantID, w, h int) { st.setVideoSize(p.id, remote, w, h) }
	ec.mute = func(kind string, muted bool) { st.setMuted(p.id, kind, muted) }
	ec.preferLayer = func(remote ivsrt.ParticipantID, rid string) { st.setPreferredLayer(p.id, remote, rid) }
	ec.run(ctx, s.pingInterval, s.pingTimeout)

	st.lock()
	if p := st.parts[p.id]; p != nil && p.events == ec {
		p.events = nil
		st.changed = true
		st.leaveIfGone(ctx, p)
	}
	st.unlock()
}

// attachEvents joins the participant, or attaches the new WebSocket to it
// if it is already in the stage (the newer WebSocket replaces an older
// one). The stage is locked.
func (st *stage) attachEvents(ctx context.Context, c claims, conn *websocket.Conn, base string) (*eventsConn, *participant, *refusal) {
	tok, ref := st.admit(ctx, c)
	if ref != nil {
		return nil, nil, ref
	}
	p, ref := st.join(ctx, tok, c.client, protocolUnknown)
	if ref != nil {
		return nil, nil, ref
	}
	if old := p.events; old != nil {
		old.kick(closeReplaced, "another connection of this participant took over")
	}
	ec := newEventsConn(conn)
	p.events = ec
	st.changed = true
	// The layers chosen were the previous client's: this one tells its own.
	old := p.preferredLayers
	p.preferredLayers = nil
	for remote := range old {
		if ss := p.subs[remote]; ss != nil {
			for _, d := range ss.downs {
				d.SetPreferredLayer("")
			}
			st.tellWish(ss)
		}
	}
	caps := tok.Capabilities
	if caps == nil {
		caps = []ivsrt.Capability{}
	}
	attrs := tok.Attributes
	if attrs == nil {
		attrs = map[string]string{}
	}
	ec.send(joinedMessage{
		Type:           "joined",
		ParticipantID:  p.id,
		StageARN:       st.arn,
		SessionID:      st.session,
		UserID:         tok.UserID,
		Attributes:     attrs,
		Capabilities:   caps,
		WHIPURL:        base + "/whip",
		WHEPURL:        base + "/whep/",
		PingIntervalMS: st.s.pingInterval.Milliseconds(),
		ICEServers:     st.s.iceServersOf(tok),
	})
	if p.layersNeeded != nil && p.pub != nil {
		ec.send(publishLayersMessage{Type: "publishLayers", RIDs: p.layersNeeded})
	}
	return ec, p, nil
}

// refuse tells the client why it may not join and closes the WebSocket.
func refuse(ctx context.Context, conn *websocket.Conn, ref *refusal) {
	code := closeRefused
	switch ref.code {
	case codeStageNotFound:
		code = closeStageDeleted
	case codeShuttingDown:
		code = closeShutdown
	case ivsrt.ErrInternalServer:
		code = closeInternal
	}
	buf, _ := json.Marshal(errorMessage{Type: "error", Code: ref.code, Message: ref.message})
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if err := conn.Write(wctx, websocket.MessageText, buf); err != nil {
		conn.CloseNow()
		return
	}
	conn.Close(websocket.StatusCode(code), closeReason(ref.code+": "+ref.message))
}

// closeReason fits a reason in a close frame, which holds 123 bytes.
func closeReason(s string) string {
	if len(s) <= 123 {
		return s
	}
	cut := 120
	for cut > 0 && s[cut]&0xc0 == 0x80 { // not inside a UTF-8 sequence
		cut--
	}
	return s[:cut] + "..."
}

// eventsConn is one events WebSocket. Messages are queued and written by
// its own goroutine; the stage state is coalesced, so that a slow client
// gets the latest state rather than every one.
type eventsConn struct {
	conn *websocket.Conn
	wake chan struct{}

	// exchange exchanges the participant's token for a new one and
	// returns the answer (exchange.go); videoSize takes the size the
	// client shows a publisher's video at (adapt.go). Set before run.
	exchange  func(raw string) any
	videoSize func(remote ivsrt.ParticipantID, width, height int)
	// mute takes what the client says it muted or unmuted; preferLayer
	// the simulcast layer it asks for of a publisher's video.
	mute        func(kind string, muted bool)
	preferLayer func(remote ivsrt.ParticipantID, rid string)

	mu         sync.Mutex
	queue      [][]byte
	state      []byte
	kicked     bool
	kickCode   int
	kickReason string
}

func newEventsConn(conn *websocket.Conn) *eventsConn {
	return &eventsConn{conn: conn, wake: make(chan struct{}, 1)}
}

func (c *eventsConn) notify() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// send queues a message.
func (c *eventsConn) send(v any) {
	buf, err := json.Marshal(v)
	if err != nil {
		return
	}
	c.mu.Lock()
	if len(c.queue) < maxQueued {
		c.queue = append(c.queue, buf)
	}
	c.mu.Unlock()
	c.notify()
}

// setState replaces the stage state waiting to be written.
func (c *eventsConn) setState(buf []byte) {
	c.mu.Lock()
	c.state = buf
	c.mu.Unlock()
	c.notify()
}

// kick tells the client why it is being disconnected and closes the
// WebSocket with code.
func (c *eventsConn) kick(code int, reason string) {
	c.mu.Lock()
	if !c.kicked {
		c.kicked, c.kickCode, c.kickReason = true, code, reason
	}
	c.mu.Unlock()
	c.notify()
}

// run serves the connection until it closes: it writes what is queued,
// answers the client's pings, and pings the client, closing the
// connection when a pong is late (the network vanished).
func (c *eventsConn) run(ctx context.Context, pingInterval, pingTimeout time.Duration) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()

	wg.Add(2)
	go func() {
		defer wg.Done()
		defer cancel()
		c.read(ctx)
	}()
	go func() {
		defer wg.Done()
		t := time.NewTicker(pingInterval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			pctx, pcancel := context.WithTimeout(ctx, pingTimeout)
			err := c.conn.Ping(pctx)
			pcancel()
			if err != nil {
				cancel()
				return
			}
		}
	}()

	for {
		select {
		case <-ctx.Done():
			c.conn.CloseNow()
			return
		case <-c.wake:
		}
		c.mu.Lock()
		queue, state := c.queue, c.state
		c.queue, c.state = nil, nil
		kicked, code, reason := c.kicked, c.kickCode, c.kickReason
		c.mu.Unlock()
		for _, buf := range queue {
			if !c.write(ctx, buf) {
				return
			}
		}
		if state != nil && !kicked {
			if !c.write(ctx, state) {
				return
			}
		}
		if kicked {
			buf, _ := json.Marshal(errorMessage{Type: "disconnected", Code: disconnectCode(code), Message: reason})
			if c.write(ctx, buf) {
				c.conn.Close(websocket.StatusCode(code), closeReason(reason))
			}
			c.conn.CloseNow()
			return
		}
	}
}

// disconnectCode names a close code in the disconnected message.
func disconnectCode(code int) string {
	switch code {
	case closeDisconnected:
		return "DISCONNECTED"
	case closeStageDeleted:
		return codeStageNotFound
	case closeReplaced:
		return "REPLACED"
	case closeShutdown:
		return codeShuttingDown
	}
	return "CLOSED"
}

func (c *eventsConn) write(ctx context.Context, buf []byte) bool {
	wctx, cancel := context.WithTimeout(ctx, writeTimeout)
	defer cancel()
	if err := c.conn.Write(wctx, websocket.MessageText, buf); err != nil {
		c.conn.CloseNow()
		return false
	}
	return true
}

// clientMessage is what a client may send: {"type":"ping"}, answered with
// {"type":"pong"}; {"type":"exchangeToken","token":"..."}, answered with
// "tokenExchanged" or "exchangeTokenError"; {"type":"videoSize",
// "participantId":"...","width":640,"height":360}, the size in pixels the
// client shows that publisher's video at (0×0: not shown);
// {"type":"mute","kind":"video","muted":true}, what it muted or unmuted;
// {"type":"preferLayer","participantId":"...","rid":"h"}, the simulcast
// layer it asks for of that publisher ("": none). Other messages are
// ignored.
type clientMessage struct {
	Type          string              `json:"type"`
	Token         string              `json:"token,omitempty"`
	ParticipantID ivsrt.ParticipantID `json:"participantId,omitempty"`
	Width         int                 `json:"width,omitempty"`
	Height        int                 `json:"height,omitempty"`
	Kind          string              `json:"kind,omitempty"`
	Muted         bool                `json:"muted,omitempty"`
	RID           *string             `json:"rid,omitempty"`
}

func (c *eventsConn) read(ctx context.Context) {
	for {
		_, data, err := c.conn.Read(ctx)
		if err != nil {
			return
		}
		var m clientMessage
		if json.Unmarshal(data, &m) != nil {
			continue
		}
		if m.ParticipantID != "" {
			// What a participant keeps per publisher is keyed by an id
			// of the form ids have.
			var v ivsrt.Validation
			if !v.TokenParticipantID("participantId", string(m.ParticipantID)) {
				continue
			}
		}
		switch m.Type {
		case "ping":
			c.send(clientMessage{Type: "pong"})
		case "exchangeToken":
			if c.exchange != nil {
				c.send(c.exchange(m.Token))
			}
		case "videoSize":
			if c.videoSize != nil && m.Width >= 0 && m.Height >= 0 && m.Width <= maxVideoSide && m.Height <= maxVideoSide {
				c.videoSize(m.ParticipantID, m.Width, m.Height)
			}
		case "preferLayer":
			if c.preferLayer != nil && m.RID != nil && validRID(*m.RID) {
				c.preferLayer(m.ParticipantID, *m.RID)
			}
		case "mute":
			if c.mute != nil && (m.Kind == "audio" || m.Kind == "video") {
				c.mute(m.Kind, m.Muted)
			}
		}
	}
}
