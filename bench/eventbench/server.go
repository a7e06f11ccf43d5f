package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
	"github.com/ivsrt/ivsrt/internal/sdkhttp"
)

const (
	region = "us-east-1"
	keyID  = "AKIAEVENTBENCH000001"
	secret = "eventbench-secret-access-key-0000000000"
)

// children are the processes the bench started; every one is killed
// before the bench exits, on an error or Ctrl-C too.
var children struct {
	mu    sync.Mutex
	procs map[*os.Process]struct{}
}

// killChildren kills every server still running.
func killChildren() {
	children.mu.Lock()
	defer children.mu.Unlock()
	for p := range children.procs {
		p.Kill()
	}
	clear(children.procs)
}

// freeAddr returns a 127.0.0.1 address whose port was free a moment ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// server is a running `ivsrt serve`.
type server struct {
	name    string
	cmd     *exec.Cmd
	url     string
	logPath string
	exited  chan struct{}
	waitErr error
}

// startServer runs `ivsrt serve` on a free port of 127.0.0.1 with a fresh
// data folder under dir, extra flags added, and waits until it listens.
func startServer(ctx context.Context, bin, dir, name string, extra ...string) (*server, error) {
	addr, err := freeAddr()
	if err != nil {
		return nil, err
	}
	data, err := os.MkdirTemp(dir, name+"-")
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(data, "server.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return nil, err
	}
	args := append([]string{"serve", "--listen", addr, "--data", filepath.Join(data, "data"),
		"--access-key-id", keyID, "--secret-access-key", secret,
		"--rtc-udp-port", "0", "--rtc-tcp-port", "-1", "--turn-udp-port", "-1", "--rtmp-port", "-1", "--log-level", "warn"}, extra...)
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	// Should the bench die without cleaning up, the kernel ends the server.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	children.mu.Lock()
	err = cmd.Start()
	if err == nil {
		if children.procs == nil {
			children.procs = map[*os.Process]struct{}{}
		}
		children.procs[cmd.Process] = struct{}{}
	}
	children.mu.Unlock()
	if err != nil {
		logFile.Close()
		return nil, fmt.Errorf("start ivsrt: %w", err)
	}
	s := &server{name: name, cmd: cmd, url: "http://" + addr, logPath: logPath, exited: make(chan struct{})}
	go func() {
		s.waitErr = cmd.Wait()
		logFile.Close()
		close(s.exited)
	}()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return s, nil
		}
		select {
		case <-s.exited:
			return nil, fmt.Errorf("ivsrt (%s) exited at start (%v): %s", name, s.waitErr, tail(logPath))
		case <-ctx.Done():
			s.stop()
			return nil, ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("ivsrt (%s) did not listen on %s within 30 s: %s", name, addr, tail(logPath))
		}
	}
}

func (s *server) pid() int { return s.cmd.Process.Pid }

// cpu returns the server's CPU time so far, -1 if it cannot be read.
func (s *server) cpu() time.Duration {
	d, err := procstat.ProcessCPU(s.pid())
	if err != nil {
		return -1
	}
	return d
}

// stop ends the server: SIGTERM, then SIGKILL after 10 s.
func (s *server) stop() {
	select {
	case <-s.exited:
	default:
		s.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-s.exited:
		case <-time.After(10 * time.Second):
			s.cmd.Process.Kill()
			<-s.exited
		}
	}
	children.mu.Lock()
	delete(children.procs, s.cmd.Process)
	children.mu.Unlock()
}

func tail(path string) string {
	data, _ := os.ReadFile(path)
	if len(data) > 2000 {
		data = data[len(data)-2000:]
	}
	return string(data)
}

// newTransport returns a keep-alive transport for n concurrent callers.
func newTransport(n int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * n,
		MaxIdleConnsPerHost: 2 * n,
		IdleConnTimeout:     90 * time.Second,
	}
}

// newClient returns an ivsrealtime client of endpoint that makes exactly
// one attempt per call, as apibench's clients do.
func newClient(endpoint string, tr *http.Transport) *ivsrealtime.Client {
	return ivsrealtime.New(ivsrealtime.Options{
		Region:           region,
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		HTTPClient:       &http.Client{Transport: sdkhttp.Transport(tr), Timeout: 30 * time.Second},
		RetryMaxAttempts: 1,
	})
}

// createStages makes n stages named prefix-<i> and returns their ARNs.
func createStages(ctx context.Context, c *ivsrealtime.Client, prefix string, n int) ([]string, error) {
	arns := make([]string, 0, n)
	for i := range n {
		out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String(fmt.Sprintf("%s-%03d", prefix, i))})
		if err != nil {
			return nil, fmt.Errorf("create stage %d: %w", i, err)
		}
		arns = append(arns, aws.ToString(out.Stage.Arn))
	}
	return arns, nil
}

// sinkStatus is the part of GET /v1/events/sinks the report shows.
type sinkStatus struct {
	Name        string `json:"name"`
	Pending     int    `json:"pending"`
	InFlight    int    `json:"inFlight"`
	Delivered   int64  `json:"delivered"`
	FailedTries int64  `json:"failedTries"`
	Dead        int64  `json:"deadLettered"`
}

// sinks reads the server's delivery status, signed as the API is.
func (s *server) sinks(ctx context.Context) ([]sinkStatus, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.url+"/v1/events/sinks", nil)
	if err != nil {
		return nil, err
	}
	empty := sha256.Sum256(nil)
	creds := aws.Credentials{AccessKeyID: keyID, SecretAccessKey: secret}
	if err := v4.NewSigner().SignHTTP(ctx, creds, req, hex.EncodeToString(empty[:]), "ivs", region, time.Now()); err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET /v1/events/sinks: %s: %s", resp.Status, body)
	}
	var out struct {
		Sinks []sinkStatus `json:"sinks"`
	}
	if err := json.Unmarshal(body, &out); err != nil {
		return nil, fmt.Errorf("GET /v1/events/sinks: %w", err)
	}
	return out.Sinks, nil
}
