package metrics

import (
	"os"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/events"
)

type fakeMedia struct{}

func (fakeMedia) MediaStats() ivsrt.MediaStats {
	return ivsrt.MediaStats{Participants: 3, PacketsOut: 7}
}

type fakeSinks struct{}

func (fakeSinks) Status() []events.SinkStatus {
	return []events.SinkStatus{{Name: "hook", Kind: "webhook", Pending: 2, LastDeliveredAt: time.Now()}}
}

// exposed returns the names of every family the registry exposes once
// each metric has been observed.
func exposed(t *testing.T) map[string]bool {
	r := New()
	r.SetMedia(fakeMedia{})
	r.SetTURN(fakeTURN{})
	r.SetSinks(fakeSinks{})
	r.ObserveRequest("CreateStage", "", time.Millisecond)
	r.ObserveReception(ivsrt.Reception{Kind: "video", FractionLost: .01, Jitter: time.Millisecond, RTT: 20 * time.Millisecond})
	r.ObserveDelivery("hook", time.Second)
	r.ObserveStoreWrite(time.Millisecond, "commit")
	fams, err := r.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	for _, f := range fams {
		names[f.GetName()] = true
	}
	return names
}

// TestDocumentedNames: every ivsrt_ metric the operations guide and the
// Grafana dashboard name is one the server exposes, and every one the
// server exposes is in the guide.
func TestDocumentedNames(t *testing.T) {
	names := exposed(t)
	name := regexp.MustCompile(`ivsrt_[a-z_]+`)
	for _, doc := range []string{"../docs/operations.md", "../docs/grafana-dashboard.json"} {
		b, err := os.ReadFile(doc)
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range name.FindAllString(string(b), -1) {
			n = strings.TrimSuffix(n, "_")
			for _, suffix := range []string{"_bucket", "_count", "_sum"} {
				if base := strings.TrimSuffix(n, suffix); base != n && names[base] {
					n = base
				}
			}
			if !names[n] && !strings.HasSuffix(n, "_") {
				t.Errorf("%s names %s, which the server does not expose", doc, n)
			}
		}
	}
	guide, _ := os.ReadFile("../docs/operations.md")
	for n := range names {
		if !strings.HasPrefix(n, "ivsrt_") {
			continue
		}
		listed := strings.Contains(string(guide), n)
		// The table shortens a name that follows one sharing its start:
		// "..._bytes_total".
		parts := strings.Split(n, "_")
		for k := 2; k < len(parts) && !listed; k++ {
			listed = strings.Contains(string(guide), "`..._"+strings.Join(parts[k:], "_")+"`")
		}
		if !listed {
			t.Errorf("docs/operations.md does not list %s", n)
		}
	}
}

type fakeTURN struct{}

func (fakeTURN) TURNStats() TURNStats {
	return TURNStats{Allocations: 3, Participants: 2, RefusedAuth: 1}
}
