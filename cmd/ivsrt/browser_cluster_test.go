package main

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/ivsrt/ivsrt/cluster"
	"github.com/ivsrt/ivsrt/web/webtest"
)

// TestBrowserClusterEdge: two pages written against the IVS Stage API on
// a stage across two nodes. Alice publishes simulcast on the stage's
// node; Bob joins through the other, which serves his subscription as an
// edge: he plays her video and hears her, is told her three layers, and
// gets the low one when his strategy prefers it — his events WebSocket on
// the stage's node, his media from the edge.
func TestBrowserClusterEdge(t *testing.T) {
	if testing.Short() {
		t.Skip("starts two servers and a browser")
	}
	tc := startTestCluster(t, nil, "node-a", "node-b")
	a := tc.nodes[0]
	b := webtest.NewBrowser(t)
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	b.Deadline = ctx

	out, err := a.api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String("edge-browser")})
	if err != nil {
		t.Fatal(err)
	}
	arn := aws.ToString(out.Stage.Arn)
	aliceTok := createToken(t, a.api, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("alice")})
	alice := openIVSPage(t, b, "http://"+a.srv.addr, "alice", aws.ToString(aliceTok.Token),
		`{video: {width: 1280, height: 720}, config: {maxBitrate: 2500, simulcast: {enabled: true}}}`)
	alice.waitEvent("alice publishing", 0, func(e ivsEvent) bool { return e.Name == "publish" && e.Local && e.State == "published" })

	// Bob joins through the node that does not host the stage.
	var view cluster.StageView
	if err := clusterGet(t, a.srv.addr, cluster.StagesPath+"?arn="+url.QueryEscape(arn), &view); err != nil {
		t.Fatal(err)
	}
	var edge *clusterNode
	for _, n := range tc.nodes {
		if n.name != view.Host {
			edge = n
		}
	}
	t.Logf("the stage is on %s; bob joins through %s", view.Host, edge.name)
	bobTok := createToken(t, edge.api, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arn), UserId: aws.String("bob")})
	bob := openIVSPage(t, b, "http://"+edge.srv.addr, "bob", aws.ToString(bobTok.Token))
	defer func() {
		if t.Failed() {
			t.Logf("bob's events: %v", bob.log())
		}
	}()
	bob.waitPlays("alice", true)

	eventually(t, 10*time.Second, "bob's subscription served by the edge", func() error {
		if err := clusterGet(t, a.srv.addr, cluster.StagesPath+"?arn="+url.QueryEscape(arn), &view); err != nil {
			return err
		}
		for _, p := range view.Participants {
			if string(p.ID) != aws.ToString(bobTok.ParticipantId) {
				continue
			}
			for _, s := range p.Subscriptions {
				if string(s.Publisher) == aws.ToString(aliceTok.ParticipantId) && s.Node == edge.name {
					return nil
				}
			}
		}
		return fmt.Errorf("stage view %+v", view)
	})
	fams := scrape(t, "http://"+edge.srv.addr+"/metrics")
	if pulls, subs := value(fams, "ivsrt_edge_pulls"), value(fams, "ivsrt_edge_subscriptions"); pulls != 2 || subs != 1 {
		t.Errorf("the edge: %v pulls, %v subscriptions; want 2 (audio, video) and 1", pulls, subs)
	}

	i := bob.waitEvent("alice's layers", 0, func(e ivsEvent) bool {
		return e.Name == "layers" && e.User == "alice" && strings.Count(e.Types, ",") == 2
	})
	if got := bob.log()[i].Types; got != "low 320x180,mid 640x360,high 1280x720" {
		t.Errorf("alice's layers as bob is told them: %q", got)
	}
	skip := len(bob.log())
	webtest.Eval[bool](bob.tab, `app.layers.alice = "low", app.stage.refreshStrategy(), true`)
	bob.waitEvent("the low layer selected", skip, func(e ivsEvent) bool {
		return e.Name == "layerSelected" && e.Type == "low" && e.Reason == "selected" && e.State == "false"
	})
	bob.tab.WaitFor("alice's video at 320×180 from the edge", `app.videos.alice.videoWidth === 320`, 20*time.Second)
}
