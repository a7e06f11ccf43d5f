package clusterbench

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
	"github.com/ivsrt/ivsrt/store/postgres/pgtest"
)

// benchEnv must be 1 for the benchmark to run: it takes minutes and all
// of the machine.
const benchEnv = "IVSRT_BENCH"

var (
	flagSetups          = flag.String("setups", "sqlite,pg1,pg3", "setups to measure, in this order: sqlite, pg1, pg3")
	flagPhases          = flag.String("phases", "api,participants", "phases to run for each setup")
	flagConcurrency     = flag.Int("concurrency", 64, "concurrent API clients, spread round-robin over the nodes")
	flagWarmup          = flag.Duration("warmup", 2*time.Second, "unmeasured time before each API phase")
	flagDuration        = flag.Duration("duration", 10*time.Second, "measured time of each API phase")
	flagQuietWait       = flag.Duration("quiet-wait", 10*time.Second, "before each phase, wait up to this long for the machine to go idle")
	flagMaxOther        = flag.Duration("max-other", time.Second, "an API phase during which other work took more CPU than this is measured again…")
	flagRetries         = flag.Int("retries", 1, "…up to this many times; the least disturbed attempt is kept")
	flagStages          = flag.Int("stages", 100, "stages made for the API phases")
	flagMaxParticipants = flag.Int("max-participants", 300, "the ramp stops when this many participants are connected")
	flagStep            = flag.Int("step", 20, "participants added per ramp step (whole stages of 10)")
	flagSettle          = flag.Duration("settle", 2*time.Second, "steady time measured after each ramp step's joins")
	flagHold            = flag.Duration("hold", 5*time.Second, "time held at the top of the ramp, measured")
	flagOut             = flag.String("out", "", "report file; default bench/results/<YYYY-MM-DD>/cluster.md of the module, - for none")
)

func TestMain(m *testing.M) { pgtest.Main(m) }

// TestReport measures every setup of -setups and writes the report.
func TestReport(t *testing.T) {
	if os.Getenv(benchEnv) != "1" {
		t.Skipf("a benchmark of several minutes; set %s=1 to run it", benchEnv)
	}
	root, err := procstat.ModuleRoot()
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	bin, err := procstat.BuildServer(ctx, root, t.TempDir())
	cancel()
	if err != nil {
		t.Fatal(err)
	}

	rep := &report{started: time.Now().UTC(), root: root}
	phases := strings.Split(*flagPhases, ",")
	for _, key := range strings.Split(*flagSetups, ",") {
		var s setup
		for _, c := range setups {
			if c.key == strings.TrimSpace(key) {
				s = c
			}
		}
		if s.key == "" {
			t.Fatalf("-setups: unknown setup %q", key)
		}
		rep.setups = append(rep.setups, s)
		t.Run(s.key, func(t *testing.T) {
			for _, phase := range phases {
				var ok bool
				switch strings.TrimSpace(phase) {
				case "api":
					ok = t.Run("api", func(t *testing.T) { rep.api = append(rep.api, benchAPI(t, bin, s)...) })
				case "participants":
					ok = t.Run("participants", func(t *testing.T) { rep.ramps = append(rep.ramps, benchParticipants(t, bin, s)) })
				default:
					t.Fatalf("-phases: unknown phase %q", phase)
				}
				if !ok {
					rep.failures = append(rep.failures, s.name+", "+phase+": failed; see the test log")
				}
			}
		})
	}

	out := *flagOut
	if out == "" {
		out = filepath.Join(root, "bench", "results", rep.started.Format("2006-01-02"), "cluster.md")
	}
	text := rep.markdown()
	t.Logf("report:\n%s", text)
	if out == "-" {
		return
	}
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(out, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s", out)
}
