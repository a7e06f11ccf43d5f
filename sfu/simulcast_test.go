package sfu_test

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/coder/websocket"
	"github.com/pion/rtp"
	"github.com/pion/sdp/v3"
	"github.com/pion/webrtc/v4"
)

// simulcastLayers are what a simulcastPublisher sends: rid, picture size
// and payload size of its packets.
var simulcastLayers = []struct {
	rid           string
	width, height int
	size          int
}{{"q", 320, 180, 150}, {"h", 640, 360, 500}, {"f", 1280, 720, 1100}}

// simulcastPublisher sends VP8 in the three layers over WHIP: 30 frames a
// second of one packet each, every tenth a keyframe that tells its size.
// Each payload's last byte tells the layer (1, 2, 3).
type simulcastPublisher struct {
	tracks []*webrtc.TrackLocalStaticRTP
	stop   chan struct{}
	done   chan struct{}
}

func startSimulcastPublisher(t *testing.T, h *harness, tok string) *simulcastPublisher {
	t.Helper()
	pc, _ := newClientPC(t)
	p := &simulcastPublisher{stop: make(chan struct{}), done: make(chan struct{})}
	var sender *webrtc.RTPSender
	for i, l := range simulcastLayers {
		track, err := webrtc.NewTrackLocalStaticRTP(webrtc.RTPCodecCapability{MimeType: webrtc.MimeTypeVP8},
			"video", "camera", webrtc.WithRTPStreamID(l.rid))
		if err != nil {
			t.Fatal(err)
		}
		if i == 0 {
			if sender, err = pc.AddTrack(track); err != nil {
				t.Fatal(err)
			}
		} else if err := sender.AddEncoding(track); err != nil {
			t.Fatal(err)
		}
		p.tracks = append(p.tracks, track)
	}
	connected, _ := watchState(pc)
	h.exchangeDirect(pc, "/whip", tok)
	wait(t, connected, "the publisher's connection")
	// pion leaves to the application the MID and rid each packet of a
	// simulcast layer carries (RFC 8852).
	var midID, ridID uint8
	for _, e := range sender.GetParameters().HeaderExtensions {
		switch e.URI {
		case sdp.SDESMidURI:
			midID = uint8(e.ID)
		case sdp.SDESRTPStreamIDURI:
			ridID = uint8(e.ID)
		}
	}
	mid := ""
	for _, tr := range pc.GetTransceivers() {
		if tr.Sender() == sender {
			mid = tr.Mid()
		}
	}
	if midID == 0 || ridID == 0 || mid == "" {
		t.Fatalf("the answer negotiated no MID (%d %q) or rid (%d) extension", midID, mid, ridID)
	}
	go func() {
		defer close(p.done)
		tick := time.NewTicker(33 * time.Millisecond)
		defer tick.Stop()
		for frame := 0; ; frame++ {
			select {
			case <-p.stop:
				return
			case <-tick.C:
			}
			for i, l := range simulcastLayers {
				payload := make([]byte, l.size)
				payload[0], payload[1] = 0x10, 0x01 // S, partition 0; inter frame
				if frame%10 == 0 {
					payload[1] = 0x00
					payload[4], payload[5], payload[6] = 0x9d, 0x01, 0x2a
					binary.LittleEndian.PutUint16(payload[7:], uint16(l.width))
					binary.LittleEndian.PutUint16(payload[9:], uint16(l.height))
				}
				payload[l.size-1] = byte(i + 1)
				pkt := &rtp.Packet{Header: rtp.Header{Version: 2, Marker: true,
					SequenceNumber: uint16(frame), Timestamp: uint32(frame * 3000)}, Payload: payload}
				pkt.SetExtension(midID, []byte(mid))
				pkt.SetExtension(ridID, []byte(l.rid))
				p.tracks[i].WriteRTP(pkt)
			}
		}
	}()
	t.Cleanup(p.close)
	return p
}

func (p *simulcastPublisher) close() {
	select {
	case <-p.stop:
	default:
		close(p.stop)
	}
	<-p.done
}

// layerWatcher keeps which layer each packet a subscriber receives is of.
type layerWatcher struct {
	mu     sync.Mutex
	layers []byte
}

// watchLayers subscribes to the video of publisher (a simulcastPublisher)
// through h with tok, and keeps which layer each packet is of; query is
// the WHEP request's, "" for none.
func watchLayers(h *harness, publisher, tok, query string) *layerWatcher {
	h.t.Helper()
	pc, _ := newClientPC(h.t)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		h.t.Fatal(err)
	}
	w := &layerWatcher{}
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			p, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			w.mu.Lock()
			w.layers = append(w.layers, p.Payload[len(p.Payload)-1])
			w.mu.Unlock()
		}
	})
	h.exchangeDirect(pc, "/whep/"+publisher+query, tok)
	return w
}

func (w *layerWatcher) last(n int) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return slices.Clone(w.layers[max(0, len(w.layers)-n):])
}

// first returns the layers of the first n packets, once there are n.
func (w *layerWatcher) first(t *testing.T, n int) []byte {
	t.Helper()
	var got []byte
	eventually(t, fmt.Sprintf("%d packets", n), func() error {
		w.mu.Lock()
		defer w.mu.Unlock()
		if len(w.layers) < n {
			return fmt.Errorf("%d packets", len(w.layers))
		}
		got = slices.Clone(w.layers[:n])
		return nil
	})
	return got
}

// wantFirstLayer checks that the first packets w got are all of layer.
func wantFirstLayer(t *testing.T, w *layerWatcher, what string, layer byte) {
	t.Helper()
	if got := w.first(t, 5); slices.ContainsFunc(got, func(l byte) bool { return l != layer }) {
		t.Errorf("%s: the first packets are of layers %v, want %d", what, got, layer)
	}
}

// TestSimulcast: a WHIP publisher sends three layers; a subscriber with no
// size asked gets the highest, then the lowest once it tells the server
// its tile is 320×180; the publisher is told which layers are needed, and
// once nobody needs the higher ones, only the lowest.
func TestSimulcast(t *testing.T) {
	h := newHarness(t)
	stage := h.createStage("simulcast")
	pubTok, subTok := h.token(stage, "camera"), h.token(stage, "viewer")
	pubEvents := h.dialEvents(*pubTok.Token)
	pubEvents.next("joined")
	startSimulcastPublisher(t, h, *pubTok.Token)

	subEvents := h.dialEvents(*subTok.Token)
	subEvents.next("joined")
	w := watchLayers(h, *pubTok.ParticipantId, *subTok.Token, "")

	eventually(t, "the subscriber gets the highest layer", func() error {
		if got := w.last(10); len(got) < 10 || slices.ContainsFunc(got, func(l byte) bool { return l != 3 }) {
			return fmt.Errorf("last layers %v, want f (3)", got)
		}
		return nil
	})
	first := pubEvents.next("publishLayers")
	if rids := first["rids"].([]any); len(rids) == 0 {
		t.Errorf("publishLayers %v: want the layers needed", first)
	}

	ctx, cancel := context.WithTimeout(context.Background(), testTimeout)
	defer cancel()
	msg, _ := json.Marshal(map[string]any{"type": "videoSize", "participantId": *pubTok.ParticipantId, "width": 320, "height": 180})
	if err := subEvents.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatal(err)
	}
	eventually(t, "the subscriber of a 320×180 tile gets the lowest layer", func() error {
		if got := w.last(10); len(got) < 10 || slices.ContainsFunc(got, func(l byte) bool { return l != 1 }) {
			return fmt.Errorf("last layers %v, want q (1)", got)
		}
		return nil
	})
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := pubEvents.next("publishLayers")
		if rids := m["rids"].([]any); len(rids) == 1 && rids[0] == "q" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the publisher was not told that only q is needed; last: %v", m)
		}
	}

	// The subscriber is told the layers it may choose from, and the one
	// it gets; it asks for h, whatever its tile's size, and gets it.
	layers := nextLayers(t, subEvents, func(m map[string]any) bool {
		ls, _ := m["layers"].([]any)
		return m["selected"] == "q" && len(ls) > 0 && !slices.ContainsFunc(ls, func(l any) bool {
			return l.(map[string]any)["bitrateBps"].(float64) <= 0 || l.(map[string]any)["framesPerSecond"].(float64) <= 0
		})
	})
	ls := layers["layers"].([]any)
	if len(ls) != 3 || layers["participantId"] != *pubTok.ParticipantId {
		t.Fatalf("layers message %v: want the publisher's 3 layers", layers)
	}
	for i, want := range []string{"q", "h", "f"} {
		l := ls[i].(map[string]any)
		if l["rid"] != want || l["bitrateBps"].(float64) <= 0 || l["framesPerSecond"].(float64) <= 0 {
			t.Errorf("layer %d: %v, want %s with a bitrate and a frame rate", i, l, want)
		}
	}
	for _, bad := range []string{`{"type":"preferLayer","participantId":"x","rid":"not a rid!"}`, `{"type":"preferLayer"}`} {
		if err := subEvents.conn.Write(ctx, websocket.MessageText, []byte(bad)); err != nil {
			t.Fatal(err)
		}
	}
	msg, _ = json.Marshal(map[string]any{"type": "preferLayer", "participantId": *pubTok.ParticipantId, "rid": "h"})
	if err := subEvents.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatal(err)
	}
	nextLayers(t, subEvents, func(m map[string]any) bool { return m["preferred"] == "h" && m["selected"] == "h" })
	eventually(t, "the subscriber gets the layer it prefers", func() error {
		if got := w.last(10); len(got) < 10 || slices.ContainsFunc(got, func(l byte) bool { return l != 2 }) {
			return fmt.Errorf("last layers %v, want h (2)", got)
		}
		return nil
	})
	msg, _ = json.Marshal(map[string]any{"type": "preferLayer", "participantId": *pubTok.ParticipantId, "rid": ""})
	if err := subEvents.conn.Write(ctx, websocket.MessageText, msg); err != nil {
		t.Fatal(err)
	}
	nextLayers(t, subEvents, func(m map[string]any) bool { return m["preferred"] == nil && m["selected"] == "q" })
}

// nextLayers returns the first "layers" message ok accepts.
func nextLayers(t *testing.T, c *wsClient, ok func(map[string]any) bool) map[string]any {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for {
		m := c.next("layers")
		if ok(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("no layers message as wanted; last: %v", m)
		}
	}
}

// TestSimulcastInitialLayer: a WHEP request's initialLayer decides the
// layer of the subscriber's first picture, lowest or highest; after it
// the layer is chosen as always (an unlimited subscriber climbs to the
// highest). Any other value is refused.
func TestSimulcastInitialLayer(t *testing.T) {
	h := newHarness(t)
	stage := h.createStage("simulcast-initial")
	pubTok := h.token(stage, "camera")
	pubEvents := h.dialEvents(*pubTok.Token)
	pubEvents.next("joined")
	startSimulcastPublisher(t, h, *pubTok.Token)
	pub := *pubTok.ParticipantId

	low := watchLayers(h, pub, *h.token(stage, "low").Token, "?initialLayer=lowest")
	high := watchLayers(h, pub, *h.token(stage, "high").Token, "?initialLayer=highest")
	wantFirstLayer(t, low, "initialLayer=lowest", 1)
	wantFirstLayer(t, high, "initialLayer=highest", 3)
	eventually(t, "the subscriber that started low climbs to the highest layer", func() error {
		if got := low.last(10); len(got) < 10 || slices.ContainsFunc(got, func(l byte) bool { return l != 3 }) {
			return fmt.Errorf("last layers %v, want f (3)", got)
		}
		return nil
	})

	pc, _ := newClientPC(t)
	if _, err := pc.AddTransceiverFromKind(webrtc.RTPCodecTypeVideo,
		webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
		t.Fatal(err)
	}
	_, _, err := h.post("/whep/"+pub+"?initialLayer=sideways", *h.token(stage, "odd").Token, offer(t, pc))
	var he *httpError
	if !errors.As(err, &he) || he.Status != http.StatusBadRequest {
		t.Errorf("initialLayer=sideways: %v, want 400", err)
	}
}
