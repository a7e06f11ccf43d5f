package procstat

import (
	"os"
	"os/exec"
	"testing"
	"time"
)

// TestTreeCPU: a child that spins shows in the tree's descendants, and
// once waited for it stays there.
func TestTreeCPU(t *testing.T) {
	sh, err := exec.LookPath("sh")
	if err != nil {
		t.Skip("no sh")
	}
	before, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	// A child that spins until killed: on a busy machine it may take a
	// while to get its 100 ms of CPU.
	cmd := exec.Command(sh, "-c", "while :; do :; done")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var during Tree
	for deadline := time.Now().Add(10 * time.Second); ; {
		time.Sleep(50 * time.Millisecond)
		if during, err = TreeCPU(os.Getpid()); err != nil {
			cmd.Process.Kill()
			t.Fatal(err)
		}
		if during.Descendants-before.Descendants >= 100*time.Millisecond {
			break
		}
		if time.Now().After(deadline) {
			cmd.Process.Kill()
			t.Fatalf("a spinning child for 10 s: descendants grew by %v, want 100ms or more", during.Descendants-before.Descendants)
		}
	}
	cmd.Process.Kill()
	cmd.Wait()
	after, err := TreeCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if after.Descendants < during.Descendants {
		t.Errorf("descendants went from %v to %v once the child was waited for", during.Descendants, after.Descendants)
	}
}

// TestDescendantCPU: a child is found with its command line.
func TestDescendantCPU(t *testing.T) {
	sleep, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	cmd := exec.Command(sleep, "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cmd.Process.Kill()
		cmd.Wait()
	}()
	m, err := DescendantCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := m[cmd.Process.Pid]; !ok {
		t.Errorf("DescendantCPU got %v, want the child %d among them", m, cmd.Process.Pid)
	}
	if got, want := Cmdline(cmd.Process.Pid), sleep+" 30"; got != want {
		t.Errorf("Cmdline got %q, want %q", got, want)
	}
}
