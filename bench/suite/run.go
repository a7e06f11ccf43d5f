package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
)

// binaries are the programs the suite runs, built once.
type binaries struct {
	server, apibench, sfubench, eventbench string
}

// build builds ivsrt (unless server names a binary) and the three
// benchmark commands into dir.
func build(ctx context.Context, root, dir, server string) (binaries, error) {
	b := binaries{server: server}
	if b.server == "" {
		var err error
		if b.server, err = procstat.BuildServer(ctx, root, dir); err != nil {
			return b, err
		}
	} else if abs, err := filepath.Abs(server); err == nil {
		b.server = abs
	}
	for _, c := range []struct {
		name string
		bin  *string
	}{{"apibench", &b.apibench}, {"sfubench", &b.sfubench}, {"eventbench", &b.eventbench}} {
		*c.bin = filepath.Join(dir, c.name)
		cmd := exec.CommandContext(ctx, "go", "build", "-o", *c.bin, "./bench/"+c.name)
		cmd.Dir = root
		if out, err := cmd.CombinedOutput(); err != nil {
			return b, fmt.Errorf("go build ./bench/%s: %w\n%s", c.name, err, out)
		}
	}
	return b, nil
}

// section is one benchmark run: a command and where it writes its JSON.
type section struct {
	name, title string
	bin         string
	args        []string
	json        string
}

// plan returns the benchmark runs of the suite, full or quick.
func plan(o *options, b binaries) []section {
	q := o.quick
	pick := func(full, quick string) string {
		if q {
			return quick
		}
		return full
	}
	out := func(name string) string { return filepath.Join(o.out, name) }
	quiet := o.quietWait.String()
	return []section{
		{
			name: "api", title: "control plane against concurrency (apibench)", bin: b.apibench, json: out("suite-api.json"),
			args: []string{"--clients", pick("1,4,16,64", "1,16,64"), "--runs", "1",
				"--duration", pick("5s", "2s"), "--warmup", pick("1s", "500ms"), "--stages", "100",
				"--quiet-wait", quiet, "--retries", pick("1", "0"), "--server", b.server,
				"--out", out("suite-api.md"), "--json", out("suite-api.json")},
		},
		{
			name: "fanout", title: "one publisher to N subscribers, and the plain UDP relay (sfubench)", bin: b.sfubench, json: out("suite-sfu.json"),
			args: []string{"--subscribers", pick("10,50,100,200,400", "10,50"), "--runs", "1",
				"--duration", pick("6s", "2s"), "--warmup", pick("2s", "1s"),
				"--quiet-wait", quiet, "--server", b.server, "--out", out("suite-sfu.md"), "--json", out("suite-sfu.json")},
		},
		{
			name: "meeting", title: "a meeting of 12 publishers and its viewers (sfubench --meeting)", bin: b.sfubench, json: out("suite-meeting.json"),
			args: []string{"--meeting", "12", "--viewers", pick("0,12,48", "0,12"), "--bitrate", strings.TrimSpace(fmt.Sprint(meetingKbps)),
				"--runs", "1", "--duration", pick("6s", "2s"), "--warmup", pick("2s", "1s"), "--join-concurrency", "2",
				"--quiet-wait", quiet, "--server", b.server, "--out", out("suite-meeting.md"), "--json", out("suite-meeting.json")},
		},
		{
			name: "events", title: "event delivery to a webhook (eventbench)", bin: b.eventbench, json: out("suite-events.json"),
			args: []string{"--runs", "1", "--phases", "throughput,participants", "--stages", pick("1,16", "1"),
				"--rate", fmt.Sprint(eventRate), "--duration", pick("6s", "2s"), "--warmup", pick("1s", "500ms"),
				"--reps", pick("12", "3"), "--quiet-wait", quiet, "--server", b.server,
				"--out", out("suite-events.md"), "--json", out("suite-events.json")},
		},
	}
}

// meetingKbps is the bit rate of each meeting publisher: a tile of a
// 12-person grid, not a full-screen 720p stream.
const meetingKbps = 500

// eventRate is the UpdateStage calls per second the event benchmark
// offers: below what the relay delivers on this kind of machine, so that
// the latency is that of delivery, not of a backlog.
const eventRate = 100

// sectionResult is what one benchmark run gave.
type sectionResult struct {
	section
	err          error
	began        time.Time
	elapsed      time.Duration
	machineCores float64 // the whole machine's busy cores, on average
	childCores   float64 // the benchmark's and its servers' cores
	otherCores   float64 // the rest: other work on the machine
	data         []byte  // its JSON
}

// runSection runs a benchmark as a child process, its progress going to
// stderr, and reads its JSON. The CPU of the benchmark and of every
// process it started and waited for (its servers) comes from
// RUSAGE_CHILDREN once it has ended; the rest of the machine's busy time
// is other work.
func runSection(ctx context.Context, root string, s section) *sectionResult {
	res := &sectionResult{section: s, began: time.Now()}
	os.Remove(s.json)
	log, err := os.Create(strings.TrimSuffix(s.json, ".json") + ".log")
	if err != nil {
		res.err = err
		return res
	}
	defer log.Close()
	m0, _ := procstat.MachineCPU()
	c0 := childrenCPU()
	self0 := selfCPU()
	res.err = runChild(ctx, root, s.name, s.bin, s.args, log)
	res.elapsed = time.Since(res.began)
	m1, _ := procstat.MachineCPU()
	secs := res.elapsed.Seconds()
	res.machineCores = (m1 - m0).Seconds() / secs
	res.childCores = (childrenCPU() - c0).Seconds() / secs
	res.otherCores = max(0, res.machineCores-res.childCores-(selfCPU()-self0).Seconds()/secs)
	if res.err == nil {
		var err error
		if res.data, err = os.ReadFile(s.json); err != nil {
			res.err = fmt.Errorf("no results: %w", err)
		}
	}
	return res
}

// children are the benchmark processes running, each the leader of its
// own process group (with the servers it started), so that all of them
// can be ended together.
var children struct {
	mu   sync.Mutex
	pids map[int]bool
}

// runChild runs bin with args in the module's folder; its standard
// output (the report it prints, also written to its --out file) is
// dropped and each line of its standard error is shown with the
// section's name, and kept in log.
func runChild(ctx context.Context, root, name, bin string, args []string, log io.Writer) error {
	cmd := exec.Command(bin, args...)
	cmd.Dir = root
	cmd.Stdout = io.Discard
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return err
	}
	// The kernel ends the child should the suite die first; its own
	// children get the same from it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		return err
	}
	pid := cmd.Process.Pid
	children.mu.Lock()
	if children.pids == nil {
		children.pids = map[int]bool{}
	}
	children.pids[pid] = true
	children.mu.Unlock()
	defer func() {
		children.mu.Lock()
		delete(children.pids, pid)
		children.mu.Unlock()
	}()

	var tail []string
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		sc := bufio.NewScanner(stderr)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			fmt.Fprintf(os.Stderr, "  [%s] %s\n", name, sc.Text())
			fmt.Fprintln(log, sc.Text())
			tail = append(tail, sc.Text())
			if len(tail) > 5 {
				tail = tail[1:]
			}
		}
	}()
	done := make(chan error, 1)
	go func() {
		<-copied
		done <- cmd.Wait()
	}()
	select {
	case err := <-done:
		if err != nil {
			return fmt.Errorf("%s: %w: %s", name, err, strings.Join(tail, " / "))
		}
		return nil
	case <-ctx.Done():
		endGroup(pid)
		<-done
		return ctx.Err()
	}
}

// endGroup asks a child's process group to stop, and kills it after a
// few seconds.
func endGroup(pid int) {
	syscall.Kill(-pid, syscall.SIGTERM)
	for range 50 {
		if syscall.Kill(pid, 0) != nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	syscall.Kill(-pid, syscall.SIGKILL)
}

// killChildren kills every benchmark still running, with what it started.
func killChildren() {
	children.mu.Lock()
	defer children.mu.Unlock()
	for pid := range children.pids {
		syscall.Kill(-pid, syscall.SIGKILL)
	}
}

// childrenCPU is the CPU time of the children that ended, with theirs.
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func selfCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy returns the cores the machine keeps busy over d.
func machineBusy(ctx context.Context, d time.Duration) float64 {
	a, err := procstat.MachineCPU()
	if err != nil {
		return 0
	}
	t := time.Now()
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
	b, _ := procstat.MachineCPU()
	return (b - a).Seconds() / time.Since(t).Seconds()
}

// renderPNGs draws each SVG chart into a PNG beside it with a headless
// Chromium, when there is one; the report links the SVGs either way.
func renderPNGs(ctx context.Context, charts []chartFile) {
	bin := ""
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			bin = p
			break
		}
	}
	if bin == "" {
		logf("no Chromium found: PNGs not rendered")
		return
	}
	for _, c := range charts {
		png := strings.TrimSuffix(c.path, ".svg") + ".png"
		cctx, cancel := context.WithTimeout(ctx, 60*time.Second)
		cmd := exec.CommandContext(cctx, bin, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
			"--screenshot="+png, fmt.Sprintf("--window-size=%d,%d", c.width, c.height), "file://"+c.path)
		out, err := cmd.CombinedOutput()
		cancel()
		if err != nil {
			logf("rendering %s: %v: %s", filepath.Base(c.path), err, strings.TrimSpace(string(out)))
		}
	}
}
