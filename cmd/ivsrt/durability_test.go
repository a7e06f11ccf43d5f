//go:build unix

package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt/internal/sdkhttp"
)

// The durability tests run the real binary as a separate process, stop it
// (SIGTERM, then SIGKILL under load), start it again on the same data
// folder and check that everything the API acknowledged is still there.

const (
	durableKeyID  = "AKIDDURABLETEST00001"
	durableSecret = "durable/test+secret0000000000000000000000"
	durableRegion = "us-east-1"
)

func TestDurability(t *testing.T) {
	if testing.Short() {
		t.Skip("builds and runs the server binary; skipped under -short")
	}
	bin := durableBuild(t)
	t.Run("Restart", func(t *testing.T) { durableRestart(t, bin) })
	t.Run("Kill9", func(t *testing.T) { durableKill9(t, bin) })
}

// durableBuild compiles this command once for the subtests.
func durableBuild(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ivsrt")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

// durableFreeAddr returns a loopback address nothing listens on right now.
func durableFreeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("find a free port: %v", err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

// durableServer is one running `ivsrt serve` process.
type durableServer struct {
	t       *testing.T
	cmd     *exec.Cmd
	addr    string
	logPath string
	exited  chan struct{} // closed once the process has been reaped
	waitErr error         // how it ended; read after exited is closed
}

// durableStart starts the server on addr with data as its data folder and
// returns once it answers HTTP. The process is killed when the test ends,
// if it is still running.
func durableStart(t *testing.T, bin, data, addr string, extraArgs ...string) *durableServer {
	t.Helper()
	logPath := filepath.Join(data, "..", filepath.Base(data)+"-server.log")
	logFile, err := os.OpenFile(logPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatalf("open server log: %v", err)
	}
	defer logFile.Close()

	// Media on any free UDP port and no ICE-TCP port, RTMP on any free
	// port (the arguments may name one): the default ports may be taken
	// by anything else on the machine, another server of the test.
	cmd := exec.Command(bin, "serve", "--listen", addr, "--data", data,
		"--rtc-udp-port", "0", "--rtc-tcp-port", "-1", "--turn-udp-port", "-1", "--rtmp-port", "0",
		"--access-key-id", durableKeyID, "--secret-access-key", durableSecret, "--log-level", "warn")
	cmd.Args = append(cmd.Args, extraArgs...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IVSRT_") { // flags decide, not the caller's environment
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start server: %v", err)
	}
	s := &durableServer{t: t, cmd: cmd, addr: addr, logPath: logPath, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		close(s.exited)
	}()
	t.Cleanup(func() {
		s.cmd.Process.Kill()
		<-s.exited
		if t.Failed() {
			log, _ := os.ReadFile(logPath)
			t.Logf("server log:\n%s", log)
		}
	})

	probe := &http.Client{Timeout: time.Second}
	deadline := time.Now().Add(15 * time.Second)
	for {
		resp, err := probe.Get("http://" + addr + "/")
		if err == nil {
			resp.Body.Close()
			return s
		}
		select {
		case <-s.exited:
			log, _ := os.ReadFile(logPath)
			t.Fatalf("server exited before answering (%v):\n%s", s.waitErr, log)
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not answer on %s within 15s: %v", addr, err)
		}
	}
}

// stop sends SIGTERM and waits for a clean exit.
func (s *durableServer) stop() {
	s.t.Helper()
	if err := s.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		s.t.Fatalf("SIGTERM: %v", err)
	}
	select {
	case <-s.exited:
	case <-time.After(15 * time.Second):
		s.t.Fatalf("server still running 15s after SIGTERM")
	}
	if s.waitErr != nil {
		s.t.Fatalf("server exit after SIGTERM: got %v, want status 0", s.waitErr)
	}
}

// kill sends SIGKILL and waits until the process is gone.
func (s *durableServer) kill() {
	s.t.Helper()
	if err := s.cmd.Process.Kill(); err != nil {
		s.t.Fatalf("SIGKILL: %v", err)
	}
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		s.t.Fatalf("server still running 10s after SIGKILL")
	}
}

// client returns an SDK client for the server that never retries.
func (s *durableServer) client() *ivsrealtime.Client {
	return ivsrealtime.New(ivsrealtime.Options{
		Region:           durableRegion,
		Credentials:      credentials.NewStaticCredentialsProvider(durableKeyID, durableSecret, ""),
		BaseEndpoint:     aws.String("http://" + s.addr),
		RetryMaxAttempts: 1,
		HTTPClient: &http.Client{
			Timeout:   10 * time.Second,
			Transport: sdkhttp.Transport(&http.Transport{MaxIdleConnsPerHost: 16, DisableCompression: true}),
		},
	})
}

func durableNotFound(err error) bool {
	var nf *types.ResourceNotFoundException
	return errors.As(err, &nf)
}

// durableKeyIDOf returns the "kid" header of a participant token.
func durableKeyIDOf(t *testing.T, token string) string {
	t.Helper()
	header, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(header)
	if err != nil {
		t.Fatalf("token header: %v", err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	if err := json.Unmarshal(raw, &h); err != nil || h.Kid == "" {
		t.Fatalf("token header %s: no kid (%v)", raw, err)
	}
	return h.Kid
}

// durableStageView is what a stage looks like to a client.
type durableStageView struct {
	Name string
	Tags map[string]string
}

// durableListAll lists every stage, pageSize at a time, and returns them in
// order with the nextToken and the contents of each page.
func durableListAll(ctx context.Context, t *testing.T, c *ivsrealtime.Client, pageSize int32) (arns []string, views map[string]durableStageView, tokens []string, pages [][]string) {
	t.Helper()
	views = map[string]durableStageView{}
	var next *string
	for range 1000 {
		out, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(pageSize), NextToken: next})
		if err != nil {
			t.Fatalf("ListStages: %v", err)
		}
		var page []string
		for _, s := range out.Stages {
			arn := aws.ToString(s.Arn)
			page = append(page, arn)
			arns = append(arns, arn)
			views[arn] = durableStageView{Name: aws.ToString(s.Name), Tags: s.Tags}
		}
		pages = append(pages, page)
		if out.NextToken == nil {
			return arns, views, tokens, pages
		}
		next = out.NextToken
		tokens = append(tokens, *next)
	}
	t.Fatalf("ListStages did not end after 1000 pages")
	return
}

func durableRestart(t *testing.T, bin string) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	data := filepath.Join(t.TempDir(), "data")
	addr := durableFreeAddr(t)
	srv := durableStart(t, bin, data, addr)
	c := srv.client()

	// Seven stages with tags, two participant tokens each (the first also
	// gets two from CreateStage).
	want := map[string]durableStageView{}
	var arns []string
	tokens := map[string][]string{} // stage ARN → participant ids
	var kid string
	for i := range 7 {
		in := &ivsrealtime.CreateStageInput{
			Name: aws.String(fmt.Sprintf("restart-%d", i)),
			Tags: map[string]string{"idx": fmt.Sprint(i), "team": fmt.Sprintf("team-%d", i%3)},
		}
		if i == 0 {
			in.ParticipantTokenConfigurations = []types.ParticipantTokenConfiguration{{UserId: aws.String("u0")}, {UserId: aws.String("u1")}}
		}
		out, err := c.CreateStage(ctx, in)
		if err != nil {
			t.Fatalf("CreateStage %d: %v", i, err)
		}
		arn := aws.ToString(out.Stage.Arn)
		arns = append(arns, arn)
		want[arn] = durableStageView{Name: *in.Name, Tags: maps.Clone(in.Tags)}
		for _, pt := range out.ParticipantTokens {
			tokens[arn] = append(tokens[arn], aws.ToString(pt.ParticipantId))
		}
		for j := range 2 {
			tok, err := c.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{
				StageArn: aws.String(arn), UserId: aws.String(fmt.Sprintf("user-%d-%d", i, j)),
				Attributes: map[string]string{"seat": fmt.Sprint(j)},
			})
			if err != nil {
				t.Fatalf("CreateParticipantToken %d/%d: %v", i, j, err)
			}
			tokens[arn] = append(tokens[arn], aws.ToString(tok.ParticipantToken.ParticipantId))
			kid = durableKeyIDOf(t, aws.ToString(tok.ParticipantToken.Token))
		}
	}

	// Untag one, tag two (one new key, one overwrite), delete one.
	if _, err := c.UntagResource(ctx, &ivsrealtime.UntagResourceInput{ResourceArn: aws.String(arns[1]), TagKeys: []string{"team", "absent"}}); err != nil {
		t.Fatalf("UntagResource: %v", err)
	}
	delete(want[arns[1]].Tags, "team")
	if _, err := c.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: aws.String(arns[2]), Tags: map[string]string{"extra": "yes"}}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	want[arns[2]].Tags["extra"] = "yes"
	if _, err := c.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: aws.String(arns[3]), Tags: map[string]string{"idx": "changed"}}); err != nil {
		t.Fatalf("TagResource: %v", err)
	}
	want[arns[3]].Tags["idx"] = "changed"
	deleted := arns[4]
	if _, err := c.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: aws.String(deleted)}); err != nil {
		t.Fatalf("DeleteStage: %v", err)
	}
	delete(want, deleted)

	beforeARNs, beforeViews, beforeTokens, beforePages := durableListAll(ctx, t, c, 2)
	if len(beforeTokens) == 0 {
		t.Fatalf("ListStages by 2 of %d stages gave no nextToken", len(beforeARNs))
	}
	if !maps.EqualFunc(beforeViews, want, durableSameView) {
		t.Fatalf("before restart, ListStages shows %v, want %v", beforeViews, want)
	}

	srv.stop()
	srv = durableStart(t, bin, data, addr)
	c = srv.client()

	for _, arn := range arns {
		got, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(arn)})
		tags, tagsErr := c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: aws.String(arn)})
		w, exists := want[arn]
		if !exists {
			if !durableNotFound(err) || !durableNotFound(tagsErr) {
				t.Errorf("deleted stage %s: GetStage error %v, ListTagsForResource error %v; want ResourceNotFoundException", arn, err, tagsErr)
			}
			continue
		}
		if err != nil || tagsErr != nil {
			t.Errorf("stage %s after restart: GetStage error %v, ListTagsForResource error %v", arn, err, tagsErr)
			continue
		}
		if v := (durableStageView{Name: aws.ToString(got.Stage.Name), Tags: got.Stage.Tags}); !durableSameView(v, w) {
			t.Errorf("GetStage %s after restart: got %+v, want %+v", arn, v, w)
		}
		if !maps.Equal(tags.Tags, w.Tags) {
			t.Errorf("ListTagsForResource %s after restart: got %v, want %v", arn, tags.Tags, w.Tags)
		}
	}

	afterARNs, afterViews, _, afterPages := durableListAll(ctx, t, c, 2)
	if !slices.Equal(afterARNs, beforeARNs) {
		t.Errorf("ListStages order after restart:\ngot  %v\nwant %v", afterARNs, beforeARNs)
	}
	if !maps.EqualFunc(afterViews, want, durableSameView) {
		t.Errorf("ListStages after restart: got %v, want %v", afterViews, want)
	}

	// A nextToken handed out before the restart picks up where it left off.
	out, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(2), NextToken: aws.String(beforeTokens[0])})
	if err != nil {
		t.Fatalf("ListStages with a nextToken from before the restart: %v", err)
	}
	var page []string
	for _, s := range out.Stages {
		page = append(page, aws.ToString(s.Arn))
	}
	if !slices.Equal(page, beforePages[1]) || !slices.Equal(page, afterPages[1]) {
		t.Errorf("page after an old nextToken: got %v, want %v", page, beforePages[1])
	}

	// Participant tokens survive; those of the deleted stage are gone.
	checked := 0
	for arn, ids := range tokens {
		for _, id := range ids {
			_, err := c.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{StageArn: aws.String(arn), ParticipantId: aws.String(id)})
			if arn == deleted {
				if !durableNotFound(err) {
					t.Errorf("DisconnectParticipant %s of the deleted stage: got %v, want ResourceNotFoundException", id, err)
				}
				continue
			}
			if err != nil {
				t.Errorf("DisconnectParticipant %s on %s after restart: %v", id, arn, err)
			}
			checked++
		}
	}

	// Tokens are still signed with the same key.
	tok, err := c.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: aws.String(arns[0])})
	if err != nil {
		t.Fatalf("CreateParticipantToken after restart: %v", err)
	}
	if got := durableKeyIDOf(t, aws.ToString(tok.ParticipantToken.Token)); got != kid {
		t.Errorf("token key id after restart: got %s, want %s", got, kid)
	}
	t.Logf("after SIGTERM and restart: %d stages, 1 deleted, %d participant tokens, %d list pages as before", len(want), checked, len(afterPages))
}

func durableSameView(a, b durableStageView) bool {
	return a.Name == b.Name && maps.Equal(a.Tags, b.Tags)
}

// durableAcks records the writes the server acknowledged with a 200.
type durableAcks struct {
	mu     sync.Mutex
	stages map[string]map[string]string // ARN → acknowledged tags
	tokens map[string]string            // participant id → stage ARN
	tagged int                          // acknowledged TagResource calls
}

func durableKill9(t *testing.T, bin string) {
	data := filepath.Join(t.TempDir(), "data")
	addr := durableFreeAddr(t)
	srv := durableStart(t, bin, data, addr)
	c := srv.client()

	acks := &durableAcks{stages: map[string]map[string]string{}, tokens: map[string]string{}}
	var (
		killed   atomic.Bool
		stop     atomic.Bool
		inFlight atomic.Int64
		wg       sync.WaitGroup
		errsMu   sync.Mutex
		errs     []error // failures seen before the kill
	)
	const workers = 8
	for w := range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var own []string // this worker's acknowledged stages
			for i := 0; !stop.Load(); i++ {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				inFlight.Add(1)
				err := durableWrite(ctx, c, acks, &own, w, i)
				inFlight.Add(-1)
				cancel()
				if err == nil {
					continue
				}
				if !killed.Load() {
					errsMu.Lock()
					errs = append(errs, err)
					errsMu.Unlock()
				}
				return
			}
		}()
	}

	time.Sleep(2 * time.Second)
	killed.Store(true)
	busy := inFlight.Load()
	srv.kill()
	stop.Store(true)
	wg.Wait()
	for _, err := range errs {
		t.Errorf("write failed before the kill: %v", err)
	}
	if len(acks.stages) == 0 || len(acks.tokens) == 0 || acks.tagged == 0 {
		t.Fatalf("too little load before the kill: %d stages, %d tokens, %d tag writes", len(acks.stages), len(acks.tokens), acks.tagged)
	}

	srv = durableStart(t, bin, data, addr)
	c = srv.client()
	ctx, cancel := context.WithTimeout(context.Background(), 25*time.Second)
	defer cancel()

	type check struct {
		arn, participant string
	}
	checks := make(chan check)
	var failures, stagesOK, tagsOK, tokensOK atomic.Int64
	fail := func(format string, args ...any) {
		if failures.Add(1) <= 20 {
			t.Errorf(format, args...)
		}
	}
	for range workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ch := range checks {
				if ch.participant != "" {
					_, err := c.DisconnectParticipant(ctx, &ivsrealtime.DisconnectParticipantInput{
						StageArn: aws.String(ch.arn), ParticipantId: aws.String(ch.participant)})
					if err != nil {
						fail("acknowledged participant token %s on %s after kill -9: %v", ch.participant, ch.arn, err)
						continue
					}
					tokensOK.Add(1)
					continue
				}
				want := acks.stages[ch.arn]
				got, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: aws.String(ch.arn)})
				if err != nil {
					fail("acknowledged stage %s after kill -9: GetStage: %v", ch.arn, err)
					continue
				}
				listed, err := c.ListTagsForResource(ctx, &ivsrealtime.ListTagsForResourceInput{ResourceArn: aws.String(ch.arn)})
				if err != nil {
					fail("acknowledged stage %s after kill -9: ListTagsForResource: %v", ch.arn, err)
					continue
				}
				stagesOK.Add(1)
				for k, v := range want {
					if got.Stage.Tags[k] != v || listed.Tags[k] != v {
						fail("stage %s after kill -9: acknowledged tag %s=%q, GetStage has %q, ListTagsForResource has %q",
							ch.arn, k, v, got.Stage.Tags[k], listed.Tags[k])
						continue
					}
					tagsOK.Add(1)
				}
			}
		}()
	}
	for arn := range acks.stages {
		checks <- check{arn: arn}
	}
	for id, arn := range acks.tokens {
		checks <- check{arn: arn, participant: id}
	}
	close(checks)
	wg.Wait()

	writes := len(acks.stages) + acks.tagged + len(acks.tokens)
	t.Logf("kill -9 with %d requests in flight; checked %d acknowledged writes: %d stages (%d/%d found), %d TagResource calls (%d tags found), %d participant tokens (%d found)",
		busy, writes, len(acks.stages), stagesOK.Load(), len(acks.stages), acks.tagged, tagsOK.Load(), len(acks.tokens), tokensOK.Load())
}

// durableWrite makes the i-th write of worker w: a stage, a participant
// token on one of its stages, or a tag on one, in turn. What the server
// acknowledges is recorded in acks.
func durableWrite(ctx context.Context, c *ivsrealtime.Client, acks *durableAcks, own *[]string, w, i int) error {
	switch {
	case i%3 == 0 || len(*own) == 0:
		tags := map[string]string{"worker": fmt.Sprint(w), "seq": fmt.Sprint(i)}
		out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String(fmt.Sprintf("kill-%d-%d", w, i)), Tags: tags})
		if err != nil {
			return fmt.Errorf("CreateStage: %w", err)
		}
		arn := aws.ToString(out.Stage.Arn)
		*own = append(*own, arn)
		acks.mu.Lock()
		acks.stages[arn] = tags
		acks.mu.Unlock()
	case i%3 == 1:
		arn := (*own)[i%len(*own)]
		out, err := c.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{
			StageArn: aws.String(arn), UserId: aws.String(fmt.Sprintf("user-%d-%d", w, i))})
		if err != nil {
			return fmt.Errorf("CreateParticipantToken: %w", err)
		}
		acks.mu.Lock()
		acks.tokens[aws.ToString(out.ParticipantToken.ParticipantId)] = arn
		acks.mu.Unlock()
	default:
		// The newest stage: each gets a few tags, far from the limit of 50.
		arn := (*own)[len(*own)-1]
		key, value := fmt.Sprintf("t%d", i), fmt.Sprintf("v%d-%d", w, i)
		if _, err := c.TagResource(ctx, &ivsrealtime.TagResourceInput{ResourceArn: aws.String(arn), Tags: map[string]string{key: value}}); err != nil {
			return fmt.Errorf("TagResource: %w", err)
		}
		acks.mu.Lock()
		acks.stages[arn][key] = value
		acks.tagged++
		acks.mu.Unlock()
	}
	return nil
}
