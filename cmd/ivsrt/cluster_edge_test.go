package main

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"
	"github.com/pion/interceptor"
	"github.com/pion/webrtc/v4"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/bot"
	"github.com/ivsrt/ivsrt/cluster"
	"github.com/ivsrt/ivsrt/store/postgres"
)

// TestClusterEdges runs a stage across three nodes on PostgreSQL and NATS:
// its publisher on node a (the origin), subscribers on b and c (edges).
// Every subscriber gets the same video payloads; each edge pulls the
// publication once whatever its number of subscribers; the stage keeps
// one session listing everyone once; and when c is killed its
// subscribers, trying the other nodes, get media again within 10 s while
// the session goes on.
func TestClusterEdges(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	tc := startTestCluster(t, nil, "node-a", "node-b", "node-c")
	nodes := map[string]*clusterNode{"a": tc.nodes[0], "b": tc.nodes[1], "c": tc.nodes[2]}
	ctx := testContext(t)
	db, err := postgres.Open(ctx, tc.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()

	out, err := nodes["a"].api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("across")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.Stage.Arn)
	// The stage is placed on the least-loaded node when its publisher
	// joins: that node is the origin a, the others the edges b and c.
	pubTok, err := nodes["a"].api.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("pub")})
	if err != nil {
		t.Fatal(err)
	}
	publisher, _, _ := runBot(t, bot.Config{Token: aws.ToString(pubTok.ParticipantToken.Token), Video: true, Audio: true})
	pubID := publisher.ParticipantID()
	eventually(t, 20*time.Second, "the publisher publishing", func() error {
		if publisher.Stats().Sent.VideoFrames < 30 {
			return errors.New("not yet")
		}
		return nil
	})
	h, err := db.GetStageHost(ctx, ivsrt.StageARN(arn))
	if err != nil {
		t.Fatalf("the stage's host: %v", err)
	}
	var a *clusterNode
	var edges []*clusterNode
	for _, name := range []string{"a", "b", "c"} {
		if n := nodes[name]; n.name == h.NodeID {
			a = n
		} else {
			edges = append(edges, n)
		}
	}
	if a == nil {
		t.Fatalf("the stage is hosted on %s, not one of the nodes", h.NodeID)
	}
	b, c := edges[0], edges[1]
	if c == nodes["a"] {
		// The publisher's signalling goes through node-a: c, which is
		// killed, is the other edge.
		b, c = c, b
	}
	t.Logf("origin %s, edges %s and %s", a.name, b.name, c.name)
	session := activeSession(t, a.api, arn)

	// Three subscribers on b, two on c, each asking the node itself.
	placement := map[*clusterNode]int{b: 3, c: 2}
	var viewers []*edgeViewer
	for _, n := range []*clusterNode{b, c} {
		for i := range placement[n] {
			tok, err := n.api.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn),
				UserId: aws.String(fmt.Sprintf("viewer-%s-%d", n.name, i)), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}})
			if err != nil {
				t.Fatal(err)
			}
			v := newEdgeViewer(t, aws.ToString(tok.ParticipantToken.Token), aws.ToString(tok.ParticipantToken.ParticipantId), pubID)
			if err := v.subscribe(ctx, n.srv.addr); err != nil {
				t.Fatalf("subscribe through %s: %v", n.name, err)
			}
			viewers = append(viewers, v)
		}
	}
	for _, v := range viewers {
		eventually(t, 20*time.Second, "video at "+v.id, func() error { return v.receiving(60) })
	}

	// The same payloads everywhere: what a viewer on b and one on c got
	// over the same seconds is the same set of video packets.
	time.Sleep(2 * time.Second)
	onB, onC := viewers[0].hashes(), viewers[3].hashes()
	common := 0
	for h := range onB {
		if onC[h] {
			common++
		}
	}
	t.Logf("video packets: %d on b, %d on c, %d in common", len(onB), len(onC), common)
	if common < min(len(onB), len(onC))*9/10 {
		t.Errorf("only %d of %d/%d video packets the same on b and c", common, len(onB), len(onC))
	}

	// Each edge pulls the publication once; the origin feeds two edges.
	metricsOf := func(n *clusterNode) (pulls, subs, feeds, in, out float64) {
		fams := scrape(t, "http://"+n.srv.addr+"/metrics")
		return value(fams, "ivsrt_edge_pulls"), value(fams, "ivsrt_edge_subscriptions"), value(fams, "ivsrt_feeds_out"),
			value(fams, "ivsrt_media_received_packets_total"), value(fams, "ivsrt_media_forwarded_packets_total")
	}
	for _, n := range []*clusterNode{a, b, c} {
		pulls, subs, feeds, in, out := metricsOf(n)
		t.Logf("%s: %v pulls, %v edge subscriptions, %v feeds out; packets %v in, %v out", n.name, pulls, subs, feeds, in, out)
		switch n {
		case a:
			// A feed of each kind to each edge.
			if feeds != 4 || pulls != 0 {
				t.Errorf("origin: %v feeds out, %v pulls; want 4 and 0", feeds, pulls)
			}
		default:
			// Audio and video: one pull of each.
			if pulls != 2 || subs != float64(placement[n]) {
				t.Errorf("%s: %v pulls, %v subscriptions; want 2 and %d", n.name, pulls, subs, placement[n])
			}
		}
	}

	// One story: one session, everyone listed once.
	listed := map[string]int{}
	var next *string
	for {
		page, err := c.api.ListParticipants(ctx, &ivsrealtime.ListParticipantsInput{StageArn: aws.String(arn), SessionId: aws.String(session), NextToken: next})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range page.Participants {
			listed[aws.ToString(p.ParticipantId)]++
		}
		if next = page.NextToken; next == nil {
			break
		}
	}
	if len(listed) != 1+len(viewers) {
		t.Errorf("listed %v, want the publisher and %d viewers", listed, len(viewers))
	}
	for id, n := range listed {
		if n != 1 {
			t.Errorf("participant %s listed %d times", id, n)
		}
	}

	// The cluster tells which node serves each subscription.
	var view cluster.StageView
	if err := clusterGet(t, c.srv.addr, cluster.StagesPath+"?arn="+url.QueryEscape(arn), &view); err != nil {
		t.Fatal(err)
	}
	servedBy := map[string]string{}
	for _, p := range view.Participants {
		if p.Node != a.name {
			t.Errorf("participant %s: node %s, want the host %s", p.ID, p.Node, a.name)
		}
		for _, sub := range p.Subscriptions {
			servedBy[string(p.ID)] = sub.Node
		}
	}
	for i, v := range viewers {
		want := b.name
		if i >= placement[b] {
			want = c.name
		}
		if servedBy[v.id] != want {
			t.Errorf("viewer %s: subscription served by %q, want %s (%+v)", v.id, servedBy[v.id], want, view)
		}
	}

	// Kill c: its viewers' connections fail; they subscribe again through
	// the other nodes, as a client behind a load balancer would, and get
	// media within 10 s of the kill.
	c.srv.kill()
	killed := time.Now()
	var wg sync.WaitGroup
	for _, v := range viewers[3:] {
		wg.Go(func() {
			select {
			case <-v.failed:
			case <-time.After(15 * time.Second):
				t.Errorf("%s: its connection to the dead node did not fail", v.id)
				return
			}
			v.reset()
			for time.Since(killed) < 20*time.Second {
				for _, n := range []*clusterNode{a, b} {
					if err := v.subscribe(ctx, n.srv.addr); err == nil {
						return
					} else {
						t.Logf("%s through %s: %v", v.id, n.name, err)
					}
				}
				time.Sleep(200 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	for _, v := range viewers[3:] {
		eventually(t, 10*time.Second, "video again at "+v.id, func() error { return v.receiving(30) })
		t.Logf("%s: media again %v after the kill", v.id, time.Since(killed).Round(100*time.Millisecond))
	}
	if d := time.Since(killed); d > 10*time.Second {
		t.Errorf("media back %v after the kill, want within 10 s", d)
	}
	// The dead edge did not end the session, and the others kept their
	// media.
	if got := activeSession(t, a.api, arn); got != session {
		t.Errorf("active session %q after the edge died, want %q", got, session)
	}
	for _, v := range viewers[:3] {
		before := v.count()
		eventually(t, 5*time.Second, "video still at "+v.id, func() error {
			if v.count() < before+30 {
				return errors.New("no new packets")
			}
			return nil
		})
	}
}

// edgeViewer is a WHEP subscriber of one publisher that keeps a hash of
// every video payload it receives.
type edgeViewer struct {
	t         *testing.T
	token, id string
	remote    string
	mu        sync.Mutex
	pc        *webrtc.PeerConnection
	seen      map[[32]byte]bool
	packets   int
	failed    chan struct{}
	failOnce  *sync.Once
}

func newEdgeViewer(t *testing.T, token, id, remote string) *edgeViewer {
	return &edgeViewer{t: t, token: token, id: id, remote: remote, seen: map[[32]byte]bool{},
		failed: make(chan struct{}), failOnce: &sync.Once{}}
}

// reset forgets the connection that failed and what it received.
func (v *edgeViewer) reset() {
	v.mu.Lock()
	defer v.mu.Unlock()
	v.pc.Close()
	v.pc = nil
	v.seen, v.packets = map[[32]byte]bool{}, 0
	v.failed, v.failOnce = make(chan struct{}), &sync.Once{}
}

// subscribe posts a WHEP offer to the node at addr.
func (v *edgeViewer) subscribe(ctx context.Context, addr string) error {
	var me webrtc.MediaEngine
	if err := me.RegisterDefaultCodecs(); err != nil {
		return err
	}
	var ir interceptor.Registry
	if err := webrtc.RegisterDefaultInterceptors(&me, &ir); err != nil {
		return err
	}
	var se webrtc.SettingEngine
	// A dead node is noticed in seconds, as a browser would.
	se.SetICETimeouts(time.Second, 2*time.Second, 500*time.Millisecond)
	se.SetIncludeLoopbackCandidate(true)
	api := webrtc.NewAPI(webrtc.WithMediaEngine(&me), webrtc.WithInterceptorRegistry(&ir), webrtc.WithSettingEngine(se))
	pc, err := api.NewPeerConnection(webrtc.Configuration{})
	if err != nil {
		return err
	}
	for _, kind := range []webrtc.RTPCodecType{webrtc.RTPCodecTypeAudio, webrtc.RTPCodecTypeVideo} {
		if _, err := pc.AddTransceiverFromKind(kind, webrtc.RTPTransceiverInit{Direction: webrtc.RTPTransceiverDirectionRecvonly}); err != nil {
			pc.Close()
			return err
		}
	}
	failed, once := v.failed, v.failOnce
	pc.OnConnectionStateChange(func(s webrtc.PeerConnectionState) {
		if s == webrtc.PeerConnectionStateFailed {
			once.Do(func() { close(failed) })
		}
	})
	pc.OnTrack(func(tr *webrtc.TrackRemote, _ *webrtc.RTPReceiver) {
		for {
			pkt, _, err := tr.ReadRTP()
			if err != nil {
				return
			}
			if tr.Kind() != webrtc.RTPCodecTypeVideo || len(pkt.Payload) == 0 {
				continue
			}
			h := sha256.Sum256(pkt.Payload)
			v.mu.Lock()
			if v.pc == pc {
				v.seen[h] = true
				v.packets++
			}
			v.mu.Unlock()
		}
	})
	offer, err := pc.CreateOffer(nil)
	if err != nil {
		pc.Close()
		return err
	}
	gathered := webrtc.GatheringCompletePromise(pc)
	if err := pc.SetLocalDescription(offer); err != nil {
		pc.Close()
		return err
	}
	<-gathered
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+ivsrt.WHEPPrefix+v.remote, strings.NewReader(pc.LocalDescription().SDP))
	if err != nil {
		pc.Close()
		return err
	}
	req.Header.Set("Authorization", "Bearer "+v.token)
	req.Header.Set("Content-Type", "application/sdp")
	resp, err := (&http.Client{Timeout: 15 * time.Second}).Do(req)
	if err != nil {
		pc.Close()
		return err
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusCreated {
		pc.Close()
		return fmt.Errorf("WHEP: %s: %s", resp.Status, body)
	}
	if err := pc.SetRemoteDescription(webrtc.SessionDescription{Type: webrtc.SDPTypeAnswer, SDP: string(body)}); err != nil {
		pc.Close()
		return err
	}
	v.mu.Lock()
	v.pc = pc
	v.mu.Unlock()
	v.t.Cleanup(func() { pc.Close() })
	return nil
}

// receiving reports whether n video packets have arrived on the current
// connection.
func (v *edgeViewer) receiving(n int) error {
	if got := v.count(); got < n {
		return fmt.Errorf("%d video packets", got)
	}
	return nil
}

func (v *edgeViewer) count() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	return v.packets
}

func (v *edgeViewer) hashes() map[[32]byte]bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	out := make(map[[32]byte]bool, len(v.seen))
	for h := range v.seen {
		out[h] = true
	}
	return out
}

// TestClusterSubscriberPlacement: with --node-max-subscriptions, a node
// serves the subscribers that reach it up to that load, then sends them to
// the stage's node while it has room, then to the node with the fewest;
// a full cluster refuses with 503 and Retry-After.
func TestClusterSubscriberPlacement(t *testing.T) {
	if testing.Short() {
		t.Skip("starts three servers")
	}
	tc := startTestClusterWith(t, nil, []string{"--node-max-subscriptions", "2"}, "node-a", "node-b", "node-c")
	ctx := testContext(t)
	a := tc.nodes[0]
	out, err := a.api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("placement")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.Stage.Arn)
	pubTok := createToken(t, a.api, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("pub")})
	publisher, _, _ := runBot(t, bot.Config{Token: aws.ToString(pubTok.Token), Video: true, Audio: true})
	eventually(t, 20*time.Second, "the publisher publishing", func() error {
		if publisher.Stats().Sent.VideoFrames < 30 {
			return errors.New("not yet")
		}
		return nil
	})
	var view cluster.StageView
	if err := clusterGet(t, a.srv.addr, cluster.StagesPath+"?arn="+url.QueryEscape(arn), &view); err != nil {
		t.Fatal(err)
	}
	// Every subscriber reaches the same node, one that does not host the
	// stage, as if a load balancer sent them all there.
	var entry *clusterNode
	for _, n := range tc.nodes {
		if n.name != view.Host {
			entry = n
			break
		}
	}
	t.Logf("the stage is on %s; subscribers reach %s", view.Host, entry.name)
	served := map[string]string{} // viewer's participant id → node serving it
	for i := range 6 {
		tok := createToken(t, a.api, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn),
			UserId: aws.String(fmt.Sprintf("viewer%d", i)), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}})
		v := newEdgeViewer(t, aws.ToString(tok.Token), aws.ToString(tok.ParticipantId), publisher.ParticipantID())
		// A node sent a subscriber on a load its heartbeat had not told yet
		// refuses it (503): the client tries again, as a browser's does.
		eventually(t, 10*time.Second, fmt.Sprintf("viewer %d subscribed", i), func() error {
			err := v.subscribe(ctx, entry.srv.addr)
			if err != nil && !strings.Contains(err.Error(), "503") {
				t.Fatalf("viewer %d: %v", i, err)
			}
			return err
		})
		eventually(t, 20*time.Second, "video at viewer "+v.id, func() error { return v.receiving(30) })
		eventually(t, 10*time.Second, "viewer "+v.id+" placed", func() error {
			if err := clusterGet(t, a.srv.addr, cluster.StagesPath+"?arn="+url.QueryEscape(arn), &view); err != nil {
				return err
			}
			for _, p := range view.Participants {
				if string(p.ID) == v.id && len(p.Subscriptions) == 1 {
					served[v.id] = p.Subscriptions[0].Node
					return nil
				}
			}
			return errors.New("not listed yet")
		})
	}
	count := map[string]int{}
	for _, node := range served {
		count[node]++
	}
	t.Logf("subscriptions served: %v", count)
	for _, n := range tc.nodes {
		if count[n.name] != 2 {
			t.Errorf("%s serves %d subscriptions, want 2 each (%v)", n.name, count[n.name], count)
		}
	}
	// The cluster is full: the seventh is refused, and told to come back.
	tok := createToken(t, a.api, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn),
		UserId: aws.String("one-too-many"), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}})
	v := newEdgeViewer(t, aws.ToString(tok.Token), aws.ToString(tok.ParticipantId), publisher.ParticipantID())
	if err := v.subscribe(ctx, entry.srv.addr); err == nil || !strings.Contains(err.Error(), "503") {
		t.Errorf("a subscriber of a full cluster: got %v, want 503", err)
	}
}
