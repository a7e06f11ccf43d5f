package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/serverproc"
)

// relayProcess is a running relay (this program with --relay).
type relayProcess struct {
	cmd   *exec.Cmd
	done  chan struct{}
	stdin io.WriteCloser
	addr  *net.UDPAddr
}

// startRelay starts the relay in a process of its own and reads the
// address it receives on.
func startRelay(ctx context.Context) (*relayProcess, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, err
	}
	cmd := exec.Command(self, "--relay")
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, err
	}
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, err
	}
	cmd.Stderr = os.Stderr
	if err := serverproc.Start(cmd); err != nil {
		return nil, fmt.Errorf("start relay: %w", err)
	}
	r := &relayProcess{cmd: cmd, done: make(chan struct{}), stdin: stdin}
	go func() { cmd.Wait(); close(r.done) }()
	line := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		if sc.Scan() {
			line <- sc.Text()
		}
		close(line)
		io.Copy(io.Discard, stdout)
	}()
	select {
	case l, ok := <-line:
		addr, err := net.ResolveUDPAddr("udp4", strings.TrimPrefix(l, "relay "))
		if !ok || err != nil {
			r.stop()
			return nil, fmt.Errorf("relay did not say where it listens (%q)", l)
		}
		r.addr = addr
		return r, nil
	case <-time.After(10 * time.Second):
		r.stop()
		return nil, errors.New("relay did not start")
	case <-ctx.Done():
		r.stop()
		return nil, ctx.Err()
	}
}

func (r *relayProcess) pid() int { return r.cmd.Process.Pid }

func (r *relayProcess) stop() {
	r.stdin.Close()
	serverproc.Stop(r.cmd, r.done, 2*time.Second)
}
