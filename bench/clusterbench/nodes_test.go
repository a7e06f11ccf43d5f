package clusterbench

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/jackc/pgx/v5"

	"github.com/ivsrt/ivsrt/cluster"
	"github.com/ivsrt/ivsrt/internal/natstest"
	"github.com/ivsrt/ivsrt/store/postgres/pgtest"
)

// The keys every node accepts and every client signs with.
const (
	accessKeyID     = "AKIDCLUSTERBENCH0001"
	secretAccessKey = "clusterbench/secret+00000000000000000000"
	region          = "us-east-1"
)

// setup is one configuration the benchmark measures.
type setup struct {
	key      string // its name in -setups
	name     string // its name in the report
	postgres bool   // cluster mode on PostgreSQL and NATS; else SQLite
	nodes    int
}

var setups = []setup{
	{key: "sqlite", name: "SQLite, single server", nodes: 1},
	{key: "pg1", name: "PostgreSQL, 1 node", postgres: true, nodes: 1},
	{key: "pg3", name: "PostgreSQL, 3 nodes", postgres: true, nodes: 3},
}

// node is one `ivsrt serve` process.
type node struct {
	id      string
	addr    string // host:port of its API and media plane's HTTP
	cmd     *exec.Cmd
	logPath string
	exited  chan struct{} // closed once the process has been reaped
	waitErr error
}

func (n *node) url() string { return "http://" + n.addr }
func (n *node) pid() int    { return n.cmd.Process.Pid }

// stop asks the process to end and kills it if it takes more than a few
// seconds.
func (n *node) stop() {
	select {
	case <-n.exited:
		return
	default:
	}
	n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(5 * time.Second):
		n.cmd.Process.Kill()
		<-n.exited
	}
}

// deployment is the running nodes of one setup.
type deployment struct {
	setup setup
	dsn   string // the PostgreSQL database, "" on SQLite
	nodes []*node
	pgPID int // the PostgreSQL server's process, 0 if unknown
}

// startCluster starts the nodes of s, each on a free port of 127.0.0.1,
// and returns once every node answers and, in cluster mode, sees all the
// others. The processes are stopped when t ends.
func startCluster(t *testing.T, bin string, s setup) *deployment {
	t.Helper()
	c := &deployment{setup: s}
	dir := t.TempDir()
	var natsURL string
	if s.postgres {
		c.dsn = pgtest.Start(t)
		c.pgPID = postgresPID()
		if pgVersion == "" {
			pgVersion = serverVersion(c.dsn)
		}
		natsURL = natstest.Start(t)
	}
	for i := range s.nodes {
		id := fmt.Sprintf("node-%c", 'a'+i)
		var extra []string
		if s.postgres {
			extra = []string{"--store", c.dsn, "--cluster-nats", natsURL, "--node-id", id}
		}
		c.nodes = append(c.nodes, startNode(t, bin, filepath.Join(dir, id), id, extra...))
	}
	if s.postgres {
		for _, n := range c.nodes {
			deadline := time.Now().Add(20 * time.Second)
			for {
				st, err := clusterStatus(context.Background(), n)
				if err == nil && len(st.Nodes) == s.nodes {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("%s does not see the %d nodes within 20s: %+v, %v", n.id, s.nodes, st, err)
				}
				time.Sleep(100 * time.Millisecond)
			}
		}
	}
	return c
}

func (c *deployment) pids() []int {
	pids := make([]int, len(c.nodes))
	for i, n := range c.nodes {
		pids[i] = n.pid()
	}
	return pids
}

func (c *deployment) sampleCPU() cpuSample { return sampleCPU(c.pids(), c.pgPID) }

// pgVersion is the PostgreSQL server's version, once a setup has used it.
var pgVersion string

func serverVersion(dsn string) string {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return ""
	}
	defer conn.Close(context.Background())
	var v string
	conn.QueryRow(ctx, "SHOW server_version").Scan(&v)
	return v
}

// startNode starts `ivsrt serve` with data as its data folder and returns
// once it answers HTTP.
func startNode(t *testing.T, bin, data, id string, extraArgs ...string) *node {
	t.Helper()
	addr, err := freeAddr()
	if err != nil {
		t.Fatal(err)
	}
	logPath := data + ".log"
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	// Media on any free UDP port and no ICE-TCP port, no RTMP: the
	// default ports would collide between nodes.
	args := []string{"serve", "--listen", addr, "--data", data,
		"--rtc-udp-port", "0", "--rtc-tcp-port", "-1", "--turn-udp-port", "-1", "--rtmp-port", "0",
		"--access-key-id", accessKeyID, "--secret-access-key", secretAccessKey,
		"--log-level", "warn"}
	cmd := exec.Command(bin, append(args, extraArgs...)...)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "IVSRT_") { // the flags decide, not the caller's environment
			cmd.Env = append(cmd.Env, kv)
		}
	}
	// The node goes when the benchmark goes, however that happens.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", id, err)
	}
	n := &node{id: id, addr: addr, cmd: cmd, logPath: logPath, exited: make(chan struct{})}
	go func() {
		n.waitErr = cmd.Wait()
		close(n.exited)
	}()
	t.Cleanup(func() {
		n.stop()
		if t.Failed() {
			t.Logf("%s log:\n%s", id, tail(logPath, 4000))
		}
	})

	probe := &http.Client{Timeout: time.Second, Transport: &http.Transport{Proxy: nil}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := probe.Get(n.url() + "/")
		if err == nil {
			resp.Body.Close()
			return n
		}
		select {
		case <-n.exited:
			t.Fatalf("%s exited before answering (%v):\n%s", id, n.waitErr, tail(logPath, 4000))
		case <-time.After(50 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer on %s within 30s: %v", id, addr, err)
		}
	}
}

// freeAddr returns a 127.0.0.1 address with a port that was free a moment
// ago.
func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func tail(path string, n int) string {
	data, _ := os.ReadFile(path)
	if len(data) > n {
		data = data[len(data)-n:]
	}
	return string(data)
}

// newTransport returns an HTTP transport for loopback that keeps enough
// idle connections that none is closed between requests.
func newTransport(conns int) *http.Transport {
	return &http.Transport{
		Proxy:               nil,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * conns,
		MaxIdleConnsPerHost: 2 * conns,
		IdleConnTimeout:     90 * time.Second,
	}
}

// newClient returns an ivsrealtime client for n that makes one attempt
// per call.
func newClient(n *node, tr *http.Transport) *ivsrealtime.Client {
	return ivsrealtime.New(ivsrealtime.Options{
		Region:           region,
		BaseEndpoint:     aws.String(n.url()),
		Credentials:      credentials.NewStaticCredentialsProvider(accessKeyID, secretAccessKey, ""),
		HTTPClient:       &http.Client{Transport: tr, Timeout: 30 * time.Second},
		RetryMaxAttempts: 1,
	})
}

// nodeStatus is what GET /v1/cluster/nodes answers.
type nodeStatus struct {
	Self  string             `json:"self"`
	Nodes []cluster.NodeView `json:"nodes"`
}

var statusClient = &http.Client{Transport: &http.Transport{Proxy: nil}, Timeout: 5 * time.Second}

// clusterStatus asks node n which nodes it sees, with a SigV4-signed
// request.
func clusterStatus(ctx context.Context, n *node) (nodeStatus, error) {
	var st nodeStatus
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	r, err := http.NewRequestWithContext(ctx, http.MethodGet, n.url()+cluster.StatusPath, nil)
	if err != nil {
		return st, err
	}
	sum := sha256.Sum256(nil)
	creds := aws.Credentials{AccessKeyID: accessKeyID, SecretAccessKey: secretAccessKey}
	if err := v4.NewSigner().SignHTTP(ctx, creds, r, hex.EncodeToString(sum[:]), "ivs", region, time.Now()); err != nil {
		return st, err
	}
	resp, err := statusClient.Do(r)
	if err != nil {
		return st, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return st, fmt.Errorf("GET %s: %s", cluster.StatusPath, resp.Status)
	}
	err = json.NewDecoder(resp.Body).Decode(&st)
	return st, err
}
