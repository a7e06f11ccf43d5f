package engine

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"time"
)

// ErrNoFFmpeg is returned by New when the configured ffmpeg cannot be found.
var ErrNoFFmpeg = errors.New("engine: ffmpeg not found")

// lookFFmpeg resolves the configured ffmpeg to a path, saying clearly
// which setting is wrong when it is missing: every encode and decode runs
// in an ffmpeg process, so nothing works without one.
func lookFFmpeg(name string) (string, error) {
	path, err := exec.LookPath(name)
	if err != nil {
		return "", fmt.Errorf("%w: %q (set Config.FFmpeg to an ffmpeg 5.1 or later; Debian: apt-get install ffmpeg): %w", ErrNoFFmpeg, name, err)
	}
	return path, nil
}

// proc is one running ffmpeg. Its pipes are plain os.Pipe ends rather than
// exec's StdinPipe/StdoutPipe, so that waiting for the process never races
// with reading its output: the exit is watched from the start, and a
// reader sees EOF on its own when the process dies.
type proc struct {
	name   string
	cmd    *exec.Cmd
	stderr *tail
	done   chan struct{} // closed when the process has exited
	err    error         // its exit status, set before done closes
	cpu    time.Duration // user + system time, set before done closes
}

// startProc starts ffmpeg with args. stdin and stdout are the child's ends
// (nil for none); extra become file descriptors 3, 4, ... The parent's
// copies of the child's ends are closed once the child has them.
func startProc(name, ffmpeg string, args []string, stdin, stdout *os.File, extra ...*os.File) (*proc, error) {
	p := &proc{name: name, stderr: &tail{}, done: make(chan struct{})}
	p.cmd = exec.Command(ffmpeg, args...)
	if stdin != nil {
		p.cmd.Stdin = stdin
	}
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	p.cmd.Stderr = p.stderr
	p.cmd.ExtraFiles = extra
	err := p.cmd.Start()
	for _, f := range append([]*os.File{stdin, stdout}, extra...) {
		if f != nil {
			f.Close()
		}
	}
	if err != nil {
		return nil, fmt.Errorf("engine: starting %s: %w", name, err)
	}
	go func() {
		err := p.cmd.Wait()
		if st := p.cmd.ProcessState; st != nil {
			p.cpu = st.UserTime() + st.SystemTime()
		}
		if err != nil {
			p.err = fmt.Errorf("%s exited: %w: %s", name, err, p.stderr.String())
		}
		close(p.done)
	}()
	return p, nil
}

// kill ends the process without waiting.
func (p *proc) kill() {
	select {
	case <-p.done:
	default:
		p.cmd.Process.Kill() // an error means it has already exited
	}
}

// pid is the process id, for tests that kill it from outside.
func (p *proc) pid() int { return p.cmd.Process.Pid }

// tail keeps the end of what a process wrote to stderr: ffmpeg says why it
// failed in its last lines.
type tail struct {
	mu  sync.Mutex
	buf []byte
}

const tailSize = 2048

func (t *tail) Write(b []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.buf = append(t.buf, b...)
	if len(t.buf) > tailSize {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-tailSize:]...)
	}
	return len(b), nil
}

func (t *tail) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	return strings.TrimSpace(string(t.buf))
}
