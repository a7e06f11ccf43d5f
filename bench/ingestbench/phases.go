package main

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt/bench/internal/clip"
	"github.com/ivsrt/ivsrt/bench/internal/procstat"
	"github.com/ivsrt/ivsrt/bench/internal/publish"
	"github.com/ivsrt/ivsrt/bench/internal/serverproc"
)

// The two ways media comes in.
const (
	pathRTMP = "RTMP"
	pathWHIP = "WHIP"
)

// joinTimeout bounds a publisher's start and its subscriber's first
// frame and audio packet.
const joinTimeout = 15 * time.Second

// stream is one publisher and its subscriber, in a stage of their own.
type stream struct {
	sub  *subscriber
	enc  *encoder       // RTMP in the CPU phases: ffmpeg
	rtmp *rtmpPublisher // RTMP in the delay phases: gortmplib in the bench
	whip *publish.WHIP  // WHIP
	log  *publish.Log   // of the publishers in the bench
	sent chan error     // the in-bench publisher's end
	stop context.CancelFunc
}

func (s *stream) close() {
	if s.stop != nil {
		s.stop()
	}
	if s.sent != nil {
		<-s.sent
	}
	if s.enc != nil {
		s.enc.stop()
	}
	if s.rtmp != nil {
		s.rtmp.close()
	}
	if s.whip != nil {
		s.whip.Close()
	}
	if s.sub != nil {
		s.sub.Close()
	}
}

// startStream creates a stage and starts a publisher over path and a
// subscriber of it. With ffmpeg, the RTMP publisher is an ffmpeg process
// that publishes the clip's FLV; without, gortmplib in the bench.
func startStream(ctx context.Context, api *ivsrealtime.Client, hc *http.Client, srv *serverproc.Server, c *clip.Clip, path string, ffmpeg bool, name string) (*stream, error) {
	stage, err := api.CreateStage(ctx, &ivsrealtime.CreateStageInput{Name: aws.String(name)})
	if err != nil {
		return nil, fmt.Errorf("CreateStage: %w", err)
	}
	arn := stage.Stage.Arn
	s := &stream{}
	var publisherID string
	if path == pathRTMP {
		ic, err := api.CreateIngestConfiguration(ctx, &ivsrealtime.CreateIngestConfigurationInput{StageArn: arn,
			IngestProtocol: types.IngestProtocolRtmp, InsecureIngest: true, UserId: aws.String(name + "-encoder")})
		if err != nil {
			return nil, fmt.Errorf("CreateIngestConfiguration: %w", err)
		}
		publisherID = aws.ToString(ic.IngestConfiguration.ParticipantId)
		key := aws.ToString(ic.IngestConfiguration.StreamKey)
		got, err := api.GetStage(ctx, &ivsrealtime.GetStageInput{Arn: arn})
		if err != nil {
			return nil, fmt.Errorf("GetStage: %w", err)
		}
		endpoint := aws.ToString(got.Stage.Endpoints.Rtmp)
		if endpoint == "" {
			return nil, errors.New("the stage shows no RTMP endpoint")
		}
		if ffmpeg {
			if s.enc, err = startEncoder(c.FLV, endpoint+key); err != nil {
				return nil, err
			}
		} else {
			if s.rtmp, err = dialRTMP(ctx, endpoint, key, c); err != nil {
				return nil, err
			}
			s.log = &publish.Log{Unit: clip.AACFrameTime}
			s.start(publish.Loop(c, c.AAC), s.rtmp)
		}
	} else {
		tok, err := api.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: arn,
			UserId: aws.String(name + "-publisher"), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilityPublish}})
		if err != nil {
			return nil, fmt.Errorf("CreateParticipantToken: %w", err)
		}
		publisherID = aws.ToString(tok.ParticipantToken.ParticipantId)
		if s.whip, err = publish.DialWHIP(ctx, hc, srv.URL, aws.ToString(tok.ParticipantToken.Token)); err != nil {
			return nil, err
		}
		s.log = &publish.Log{Unit: clip.OpusPacket}
		s.start(publish.Loop(c, c.Opus), s.whip)
	}
	tok, err := api.CreateParticipantToken(ctx, &ivsrealtime.CreateParticipantTokenInput{StageArn: arn,
		UserId: aws.String(name + "-viewer"), Capabilities: []types.ParticipantTokenCapability{types.ParticipantTokenCapabilitySubscribe}})
	if err != nil {
		s.close()
		return nil, fmt.Errorf("CreateParticipantToken: %w", err)
	}
	deadline := time.Now().Add(joinTimeout)
	if s.sub, err = subscribe(ctx, hc, srv.URL, aws.ToString(tok.ParticipantToken.Token), publisherID, deadline); err == nil {
		err = s.sub.waitMedia(ctx, time.Until(deadline))
	}
	if err != nil {
		if s.enc != nil {
			if out, ok := s.enc.exited(); ok {
				err = fmt.Errorf("%w (ffmpeg exited: %s)", err, out)
			}
		}
		s.close()
		return nil, fmt.Errorf("subscriber: %w", err)
	}
	return s, nil
}

// start sends src from the bench's publisher w.
func (s *stream) start(src publish.Source, w publish.Writer) {
	ctx, cancel := context.WithCancel(context.Background())
	s.stop, s.sent = cancel, make(chan error, 1)
	go func() { s.sent <- publish.Send(ctx, src, w, s.log) }()
}

// cpuPhase is one measured window of n streams over one path.
type cpuPhase struct {
	path    string
	streams int
	window  time.Duration

	server      time.Duration // the server process and its descendants (ffmpeg transcoders)
	transcoders time.Duration // of which the descendants
	encoders    time.Duration // the ffmpeg encoders (RTMP)
	bench       time.Duration // this process: subscribers, and WHIP publishers
	machine     time.Duration

	received counts // summed over the subscribers
}

// cpuSample is the CPU times and what the subscribers received at one
// moment.
type cpuSample struct {
	at              time.Time
	tree            procstat.Tree
	encoders, bench time.Duration
	machine         time.Duration
	received        counts
}

func sampleCPU(srv *serverproc.Server, streams []*stream) (cpuSample, error) {
	s := cpuSample{at: time.Now()}
	var err error
	if s.tree, err = procstat.TreeCPU(srv.PID()); err != nil {
		return s, fmt.Errorf("server CPU: %w", err)
	}
	for _, st := range streams {
		if st.enc != nil {
			d, err := st.enc.cpu()
			if err != nil {
				return s, fmt.Errorf("encoder CPU: %w", err)
			}
			s.encoders += d
		}
		c := st.sub.counts()
		s.received.videoPackets += c.videoPackets
		s.received.audioPackets += c.audioPackets
		s.received.videoBytes += c.videoBytes
		s.received.audioBytes += c.audioBytes
		s.received.frames += c.frames
		s.received.wire += c.wire
	}
	if s.bench, err = procstat.ProcessCPU(os.Getpid()); err != nil {
		return s, err
	}
	if s.machine, err = procstat.MachineCPU(); err != nil {
		return s, err
	}
	return s, nil
}

// runCPU measures the server's CPU with n streams over path, each with
// one subscriber, on a fresh server.
func runCPU(ctx context.Context, o *options, tmp, path string, n int) (*cpuPhase, error) {
	if err := procstat.WaitQuiet(ctx, o.quietWait, logf); err != nil {
		return nil, err
	}
	srv, err := serverproc.StartServer(ctx, o.serverBin, tmp, []string{"--rtmp-port", "0"})
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil, MaxIdleConnsPerHost: 8}}
	defer hc.CloseIdleConnections()
	api := srv.API(hc)
	streams := make([]*stream, n)
	defer func() {
		srv.Stop()
		var wg sync.WaitGroup
		for _, s := range streams {
			if s != nil {
				wg.Go(s.close)
			}
		}
		wg.Wait()
	}()
	// The streams start together, as they would on a busy server.
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			streams[i], errs[i] = startStream(ctx, api, hc, srv, o.clip, path, true, fmt.Sprintf("ingestbench-%d", i))
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, fmt.Errorf("%w (server log: %s)", err, serverproc.Tail(srv.Log))
	}
	if err := procstat.Sleep(ctx, o.warmup); err != nil {
		return nil, err
	}
	a, err := sampleCPU(srv, streams)
	if err != nil {
		return nil, err
	}
	if err := procstat.Sleep(ctx, o.duration); err != nil {
		return nil, err
	}
	b, err := sampleCPU(srv, streams)
	if err != nil {
		return nil, err
	}
	for _, s := range streams {
		if s.enc != nil {
			if out, ok := s.enc.exited(); ok {
				return nil, fmt.Errorf("an encoder exited during the window: %s (server log: %s)", out, serverproc.Tail(srv.Log))
			}
		}
	}
	p := &cpuPhase{path: path, streams: n, window: b.at.Sub(a.at),
		server:      b.tree.Total() - a.tree.Total(),
		transcoders: b.tree.Descendants - a.tree.Descendants,
		encoders:    b.encoders - a.encoders,
		bench:       b.bench - a.bench,
		machine:     b.machine - a.machine,
		received: counts{
			videoPackets: b.received.videoPackets - a.received.videoPackets,
			audioPackets: b.received.audioPackets - a.received.audioPackets,
			videoBytes:   b.received.videoBytes - a.received.videoBytes,
			audioBytes:   b.received.audioBytes - a.received.audioBytes,
			frames:       b.received.frames - a.received.frames,
			wire:         b.received.wire - a.received.wire,
		}}
	return p, nil
}

// delayPhase is the delay of one stream over one path.
type delayPhase struct {
	path         string
	window       time.Duration
	video, audio []time.Duration
	videoOffset  uint32 // of the subscriber's video timestamps from pts × 90 kHz
	audioErr     string // why the audio was not measured
}

// runDelay measures the delay of one stream over path, its publisher
// in the bench, on a fresh server.
func runDelay(ctx context.Context, o *options, tmp, path string) (*delayPhase, error) {
	if err := procstat.WaitQuiet(ctx, o.quietWait, logf); err != nil {
		return nil, err
	}
	srv, err := serverproc.StartServer(ctx, o.serverBin, tmp, []string{"--rtmp-port", "0"})
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil}}
	defer hc.CloseIdleConnections()
	s, err := startStream(ctx, srv.API(hc), hc, srv, o.clip, path, false, "ingestbench-delay")
	if err != nil {
		return nil, fmt.Errorf("%w (server log: %s)", err, serverproc.Tail(srv.Log))
	}
	defer s.close()
	if err := procstat.Sleep(ctx, o.warmup); err != nil {
		return nil, err
	}
	from := time.Now()
	if err := procstat.Sleep(ctx, o.delayDuration); err != nil {
		return nil, err
	}
	to := time.Now()
	// What was sent before the end arrives within this; what arrives
	// later is outside the window anyway.
	if err := procstat.Sleep(ctx, 500*time.Millisecond); err != nil {
		return nil, err
	}
	s.stop()
	if err := <-s.sent; err != nil {
		return nil, fmt.Errorf("the publisher: %w (server log: %s)", err, serverproc.Tail(srv.Log))
	}
	s.sent = nil
	sent, audioSent := s.log.Snapshot()
	frames, audio := s.sub.received()
	p := &delayPhase{path: path, window: to.Sub(from)}
	if p.video, p.videoOffset, err = videoDelays(sent, frames, from, to); err != nil {
		return nil, fmt.Errorf("video: %w", err)
	}
	if p.videoOffset != 0 {
		p.audioErr = fmt.Sprintf("the subscriber's video timestamps are offset by %d from pts × 90 kHz: the audio's offset is unknown", p.videoOffset)
	} else if p.audio, err = audioDelays(audioSent, s.log.Unit, audio, from, to); err != nil {
		p.audioErr = err.Error()
	}
	return p, nil
}
