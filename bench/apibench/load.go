package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"

	"github.com/ivsrt/ivsrt/bench/internal/loadgen"
	"github.com/ivsrt/ivsrt/bench/internal/procstat"
	"github.com/ivsrt/ivsrt/internal/sdkhttp"
)

const region = "us-east-1"

// target is a server the clients talk to.
type target struct {
	url string
	pid int // 0 when the server's CPU cannot be read
}

// newTransport returns the HTTP transport all clients of a run share, with
// enough idle connections kept that none is closed between requests.
func newTransport(concurrency int) *http.Transport {
	return &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        2 * concurrency,
		MaxIdleConnsPerHost: 2 * concurrency,
		IdleConnTimeout:     90 * time.Second,
	}
}

// newClient returns an ivsrealtime client for endpoint that makes exactly
// one attempt per call.
func newClient(endpoint, keyID, secret string, tr *http.Transport) *ivsrealtime.Client {
	return ivsrealtime.New(ivsrealtime.Options{
		Region:           region,
		BaseEndpoint:     aws.String(endpoint),
		Credentials:      credentials.NewStaticCredentialsProvider(keyID, secret, ""),
		HTTPClient:       &http.Client{Transport: sdkhttp.Transport(tr), Timeout: 30 * time.Second},
		RetryMaxAttempts: 1,
	})
}

// operation makes one call; rng is the calling client's own.
type operation func(ctx context.Context, c *ivsrealtime.Client, rng *rand.Rand) error

// operations are the calls a phase can make. stages holds the ARNs made at
// setup.
func operations(stages []string) map[string]operation {
	pick := func(rng *rand.Rand) *string { return aws.String(stages[rng.IntN(len(stages))]) }
	return map[string]operation{
		"CreateParticipantToken": func(ctx context.Context, c *ivsrealtime.Client, rng *rand.Rand) error {
			_, err := c.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{
				StageArn:   pick(rng),
				UserId:     aws.String("bench-user-" + strconv.Itoa(rng.IntN(1000))),
				Attributes: map[string]string{"role": "viewer"},
			})
			return err
		},
		"GetStage": func(ctx context.Context, c *ivsrealtime.Client, rng *rand.Rand) error {
			_, err := c.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: pick(rng)})
			return err
		},
		"ListStages": func(ctx context.Context, c *ivsrealtime.Client, _ *rand.Rand) error {
			_, err := c.ListStages(ctx, &ivsrealtime.ListStagesInput{MaxResults: aws.Int32(50)})
			return err
		},
	}
}

// createStages makes n stages with a few tags each and returns their ARNs.
func createStages(ctx context.Context, c *ivsrealtime.Client, n int) ([]string, error) {
	arns := make([]string, 0, n)
	for i := range n {
		out, err := c.CreateStage(ctx, &ivsrealtime.CreateStageInput{
			Name: aws.String(fmt.Sprintf("apibench-%03d", i)),
			Tags: map[string]string{
				"bench": "apibench",
				"index": strconv.Itoa(i),
				"team":  "media",
			},
		})
		if err != nil {
			return nil, fmt.Errorf("create stage %d: %w", i, err)
		}
		arns = append(arns, aws.ToString(out.Stage.Arn))
	}
	return arns, nil
}

// deleteStages removes what createStages made, on a server we did not start.
func deleteStages(ctx context.Context, c *ivsrealtime.Client, arns []string) error {
	for _, arn := range arns {
		if _, err := c.DeleteStage(ctx, &ivsrealtime.DeleteStageInput{Arn: aws.String(arn)}); err != nil {
			return fmt.Errorf("delete stage %s: %w", arn, err)
		}
	}
	return nil
}

// sample is what one phase measured.
type sample struct {
	Op         string
	Requests   int
	Errors     int
	FirstError string
	Elapsed    time.Duration
	Latencies  []time.Duration // successful calls, sorted
	ServerCPU  time.Duration   // -1 when unknown
	ClientCPU  time.Duration
	// OtherCPU is what the rest of the machine used meanwhile: other
	// processes, the kernel's work not charged to ours. Much of it means
	// the phase was disturbed. -1 when unknown.
	OtherCPU time.Duration
}

func (s sample) Throughput() float64 { return float64(s.Requests) / s.Elapsed.Seconds() }

// Percentile returns the latency below which q of the calls finished.
func (s sample) Percentile(q float64) time.Duration {
	if len(s.Latencies) == 0 {
		return 0
	}
	i := int(q*float64(len(s.Latencies))+0.5) - 1
	return s.Latencies[min(max(i, 0), len(s.Latencies)-1)]
}

func (s sample) Max() time.Duration {
	if len(s.Latencies) == 0 {
		return 0
	}
	return s.Latencies[len(s.Latencies)-1]
}

// CPUPerRequest is in microseconds; negative when unknown.
func (s sample) CPUPerRequest(cpu time.Duration) float64 {
	if cpu < 0 || s.Requests == 0 {
		return -1
	}
	return float64(cpu.Microseconds()) / float64(s.Requests)
}

// phase runs op from len(clients) goroutines, each with its own client, for
// warmup and then for duration; only the calls that complete during the
// second part count. With rate > 0 the calls start on a schedule of rate
// per second in all, and a call's latency counts from its scheduled start,
// so that time spent waiting for a free client is not hidden. onMeasure,
// if set, runs as measuring starts and is waited for before phase returns.
func phase(name string, clients []*ivsrealtime.Client, tgt target, op operation, rate int,
	warmup, duration time.Duration, onMeasure func() error) (sample, error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	var schedule chan time.Time
	if rate > 0 {
		schedule = make(chan time.Time, rate)
		go pace(ctx, rate, schedule)
	}

	var recording atomic.Bool
	result := sample{Op: name}
	wait := loadgen.Run(ctx, len(clients), schedule, &recording, func(ctx context.Context, i int, rng *rand.Rand) error {
		return op(ctx, clients[i], rng)
	})

	time.Sleep(warmup)
	serverBefore, serverErr := cpuOf(tgt.pid)
	clientBefore := selfCPU()
	machineBefore := machineCPU()
	var measured chan error
	if onMeasure != nil {
		measured = make(chan error, 1)
		go func() { measured <- onMeasure() }()
	}
	start := time.Now()
	recording.Store(true)
	time.Sleep(duration)
	recording.Store(false)
	result.Elapsed = time.Since(start)
	clientAfter := selfCPU()
	machineAfter := machineCPU()
	serverAfter, serverErr2 := cpuOf(tgt.pid)
	cancel()
	calls := wait()
	result.Latencies, result.Errors, result.FirstError = calls.Latencies, calls.Errors, calls.FirstError

	result.ClientCPU = clientAfter - clientBefore
	result.ServerCPU, result.OtherCPU = -1, -1
	if tgt.pid != 0 && serverErr == nil && serverErr2 == nil {
		result.ServerCPU = serverAfter - serverBefore
		result.OtherCPU = max(0, machineAfter-machineBefore-result.ServerCPU-result.ClientCPU)
	}
	slices.Sort(result.Latencies)
	result.Requests = len(result.Latencies) + result.Errors
	if measured != nil {
		if err := <-measured; err != nil {
			return result, err
		}
	}
	return result, nil
}

// pace sends the start time of each call, rate per second, until ctx ends.
// When the clients fall behind, starts queue up with their scheduled times.
func pace(ctx context.Context, rate int, schedule chan<- time.Time) {
	begin := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var sent int64
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-tick.C:
			due := int64(now.Sub(begin).Seconds() * float64(rate))
			for ; sent < due; sent++ {
				at := begin.Add(time.Duration(float64(sent) * float64(time.Second) / float64(rate)))
				select {
				case schedule <- at:
				case <-ctx.Done():
					return
				}
			}
		}
	}
}

func cpuOf(pid int) (time.Duration, error) {
	if pid == 0 {
		return 0, nil
	}
	return procstat.ProcessCPU(pid)
}
