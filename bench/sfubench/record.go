package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime"
	"github.com/aws/aws-sdk-go-v2/service/ivsrealtime/types"

	"github.com/ivsrt/ivsrt/bench/internal/procstat"
	"github.com/ivsrt/ivsrt/bench/internal/report"
	"github.com/ivsrt/ivsrt/bench/internal/serverproc"
	"github.com/ivsrt/ivsrt/internal/testmedia"
	"github.com/ivsrt/ivsrt/recording"
)

// The record mode measures individual participant recording: P
// publishers of the clip on one stage, each with o.recordSubs subscribers,
// once on a stage that records them and once, in the same run, on one
// that does not. The difference of the server's CPU is what recording
// costs; the subscribers' loss of the two says whether recording disturbs
// forwarding.

// recordBucket is the bucket of the recordings: a folder of the server's
// data folder, made when the storage configuration is created.
const recordBucket = "sfubench-recordings"

// recordPhase is one phase: P publishers, recorded or not.
type recordPhase struct {
	*measurement
	publishers int
	record     bool

	// The recordings, read from the bucket once they ended.
	recordings  int           // recordings whose metadata says they ended
	failed      int           // recordings that failed
	recorded    time.Duration // their durations, summed (the metadata's duration_ms)
	published   time.Duration // the publishers' sending times, summed
	bucketBytes uint64        // everything in the bucket
	playlists   int           // media playlists with segments and an end
	probe       string        // what ffprobe says of one recording
	keyRequests uint64        // keyframe requests the publishers received, all phase long
	thumbnails  int           // JPEGs in the bucket
	thumbCPU    time.Duration // the CPU of the server's children (ffmpeg, for thumbnails), all phase long
}

// runRecords measures each publisher count, recorded and not, o.runs
// times.
func runRecords(ctx context.Context, o *options, tmp string) error {
	logf("encoding the clip: %v of %dx%d H.264 at %d kbit/s and Opus, with ffmpeg", o.clipLength, o.clipWidth, o.clipHeight, o.stream.bitrate/1000)
	c, err := newClip(tmp, o)
	if err != nil {
		return err
	}
	o.clip = c
	logf("clip: %d frames, %.0f kbit/s of video payload in %.0f packets/s, %.0f kbit/s of Opus; %d run(s) of publishers %v, %d subscribers each",
		len(c.media.Frames), c.videoKbps(), c.packetsPerSecond(), c.audioKbps(), o.runs, o.record, o.recordSubs)
	results := make([][][2]*recordPhase, o.runs) // [run][count]{without, with}
	j := newJSONReport(o, "record")
	for r := range o.runs {
		for _, np := range o.record {
			var pair [2]*recordPhase
			// Alternate which goes first, run by run, so that a drift of
			// the machine does not favour one.
			order := []bool{false, true}
			if r%2 == 1 {
				order = []bool{true, false}
			}
			for _, rec := range order {
				logf("run %d, %d publishers, recording %s", r+1, np, onOff(rec))
				ph, err := runRecordPhase(ctx, o, tmp, np, rec)
				if err != nil {
					return fmt.Errorf("run %d, %d publishers, recording %s: %w", r+1, np, onOff(rec), err)
				}
				logf("  %s", ph.summary())
				if rec {
					logf("  %s", ph.recordingSummary())
					pair[1] = ph
				} else {
					pair[0] = ph
				}
				j.Phases = append(j.Phases, ph.jsonPhase(r+1, c.packetsPerSecond()*float64(ph.n)))
			}
			results[r] = append(results[r], pair)
		}
	}
	if o.jsonOut != "" {
		if err := report.WriteJSON(o.jsonOut, j); err != nil {
			return err
		}
	}
	return report.Write(o.out, writeRecordReport(o, results))
}

func onOff(on bool) string {
	if on {
		return "on"
	}
	return "off"
}

// runRecordPhase measures np publishers with o.recordSubs subscribers
// each, on a stage that records them or not.
func runRecordPhase(ctx context.Context, o *options, tmp string, np int, record bool) (*recordPhase, error) {
	if err := procstat.WaitQuiet(ctx, o.quietWait, logf); err != nil {
		return nil, err
	}
	srv, err := serverproc.StartServer(ctx, o.serverBin, tmp, o.serverFlags)
	if err != nil {
		return nil, err
	}
	defer srv.Stop()
	hc := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{Proxy: nil,
		MaxIdleConnsPerHost: o.joinConcurrency + np + 8}}
	defer hc.CloseIdleConnections()
	api := srv.API(hc)
	in := &ivsrealtime.CreateStageInput{Name: aws.String("sfubench")}
	if record {
		sc, err := api.CreateStorageConfiguration(ctx, &ivsrealtime.CreateStorageConfigurationInput{
			Name: aws.String("sfubench"), S3: &types.S3StorageConfiguration{BucketName: aws.String(recordBucket)}})
		if err != nil {
			return nil, fmt.Errorf("CreateStorageConfiguration: %w", err)
		}
		in.AutoParticipantRecordingConfiguration = &types.AutoParticipantRecordingConfiguration{
			StorageConfigurationArn: sc.StorageConfiguration.Arn,
			MediaTypes:              []types.ParticipantRecordingMediaType{types.ParticipantRecordingMediaTypeAudioVideo}}
	}
	nsubs := np * o.recordSubs
	toks, err := makeStageTokens(ctx, api, in, np+nsubs)
	if err != nil {
		return nil, err
	}
	ph := &recordPhase{measurement: &measurement{n: nsubs, rssIdle: processRSS(srv.PID())}, publishers: np, record: record}
	m := ph.measurement

	pubs := make([]*clipPublisher, np)
	defer func() {
		for _, p := range pubs {
			if p != nil {
				p.close()
			}
		}
	}()
	for i := range np {
		if pubs[i], err = publishClip(ctx, hc, srv.URL, toks[i].token, o.clip, o.stream.payloadSize, o.stream.pacing, o.rtcpFeedback); err != nil {
			return nil, fmt.Errorf("publisher %d: %w (server log: %s)", i+1, err, serverproc.Tail(srv.Log))
		}
	}

	sessions := make([]*session, nsubs)
	defer func() {
		// The server goes first: nobody's departure needs recording.
		srv.Stop()
		var wg sync.WaitGroup
		for _, s := range sessions {
			if s != nil && s.recv != nil {
				wg.Go(s.recv.close)
			}
		}
		wg.Wait()
	}()
	var wg sync.WaitGroup
	next := make(chan int)
	for range o.joinConcurrency {
		wg.Go(func() {
			for i := range next {
				s := &session{pub: i % np}
				s.recv, s.err = joinOne(ctx, hc, srv.URL, toks[np+i].token, toks[s.pub].id, o, o.clip.video(pubs[s.pub].log))
				sessions[i] = s
			}
		})
	}
	for i := range nsubs {
		select {
		case next <- i:
		case <-ctx.Done():
		}
	}
	close(next)
	wg.Wait()
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	var firstErr error
	var live []*session
	for _, s := range sessions {
		if s.recv == nil {
			m.failed++
			if firstErr == nil {
				firstErr = s.err
			}
			continue
		}
		m.subscribed++
		live = append(live, s)
		if at := s.recv.counts().firstAt(); !at.IsZero() {
			m.joins = append(m.joins, at.Sub(s.recv.began()))
		} else {
			m.failed++
		}
	}
	for _, p := range pubs {
		m.plis += p.keyRequests.Load()
	}
	if m.subscribed == 0 {
		return nil, fmt.Errorf("no subscriber could join: %v (server log: %s)", firstErr, serverproc.Tail(srv.Log))
	}
	if firstErr != nil {
		logf("  %d of %d subscribers failed to join, the first: %v", m.failed, nsubs, firstErr)
	}
	bucket := filepath.Join(srv.Data, "s3", recordBucket)
	if record {
		// Every publisher's recording has started (its metadata is
		// stored) before the warm-up.
		if err := waitFiles(ctx, bucket, recording.StartedKey, np, 15*time.Second); err != nil {
			return nil, fmt.Errorf("%w (server log: %s)", err, serverproc.Tail(srv.Log))
		}
	}
	m.rssJoined = processRSS(srv.PID())
	if err := procstat.Sleep(ctx, o.warmup); err != nil {
		return nil, err
	}

	// The window: each publisher's counter, and what the receivers got.
	if err := measureWindow(ctx, o, srv, m, live, np, func(i int) uint64 { return pubs[i].log.sent.Load() }); err != nil {
		return nil, err
	}

	// The publishers leave (WHIP DELETE); their recordings end, and are
	// read back from the bucket.
	for _, p := range pubs {
		if err := p.end(ctx, hc); err != nil {
			logf("  a publisher could not leave: %v", err)
		}
		ph.published += p.stopped.Sub(p.started)
		ph.keyRequests += p.keyRequests.Load()
	}
	if record {
		if err := ph.readRecordings(ctx, bucket, np); err != nil {
			return nil, fmt.Errorf("%w (server log: %s)", err, serverproc.Tail(srv.Log))
		}
		// The thumbnails' ffmpeg runs are over once the recordings ended.
		if ph.thumbCPU, err = procstat.ChildrenCPU(srv.PID()); err != nil {
			return nil, err
		}
		if ph.failed > 0 || ph.playlists < np {
			logf("  %d of %d recordings failed, %d have a playlist with segments and an end (server log: %s)",
				ph.failed, np, ph.playlists, serverproc.Tail(srv.Log))
		}
	}
	return ph, nil
}

// waitFiles waits until n files named name (a key under a recording's
// prefix) are in the bucket.
func waitFiles(ctx context.Context, bucket, name string, n int, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		got := len(findKeys(bucket, name))
		if got >= n {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d recordings have %s after %v", got, n, name, timeout)
		}
		if err := procstat.Sleep(ctx, 50*time.Millisecond); err != nil {
			return err
		}
	}
}

// findKeys returns the recording prefixes (folders) under bucket that
// hold key.
func findKeys(bucket, key string) []string {
	var prefixes []string
	filepath.WalkDir(bucket, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasSuffix(filepath.ToSlash(path), "/"+key) {
			prefixes = append(prefixes, strings.TrimSuffix(path, filepath.FromSlash(key)))
		}
		return nil
	})
	slices.Sort(prefixes)
	return prefixes
}

// readRecordings waits for the np recordings to end, then reads what they
// left in the bucket: their metadata, their playlists and their size, and
// what ffprobe says of the first.
func (ph *recordPhase) readRecordings(ctx context.Context, bucket string, np int) error {
	deadline := time.Now().Add(60 * time.Second)
	for {
		ended := len(findKeys(bucket, recording.EndedKey)) + len(findKeys(bucket, recording.FailedKey))
		if ended >= np {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%d of %d recordings ended within 60 s of their publishers leaving", ended, np)
		}
		if err := procstat.Sleep(ctx, 100*time.Millisecond); err != nil {
			return err
		}
	}
	ph.failed = len(findKeys(bucket, recording.FailedKey))
	prefixes := findKeys(bucket, recording.EndedKey)
	ph.recordings = len(prefixes)
	for _, p := range prefixes {
		var meta struct {
			Media struct {
				HLS struct {
					DurationMS int64 `json:"duration_ms"`
				} `json:"hls"`
			} `json:"media"`
		}
		b, err := os.ReadFile(filepath.Join(p, filepath.FromSlash(recording.EndedKey)))
		if err == nil {
			err = json.Unmarshal(b, &meta)
		}
		if err != nil {
			return fmt.Errorf("recording metadata: %w", err)
		}
		ph.recorded += time.Duration(meta.Media.HLS.DurationMS) * time.Millisecond
		pl, err := os.ReadFile(filepath.Join(p, filepath.FromSlash(recording.PlaylistKey)))
		if err == nil && strings.Contains(string(pl), "#EXTINF") && strings.Contains(string(pl), "#EXT-X-ENDLIST") {
			ph.playlists++
		}
	}
	filepath.WalkDir(bucket, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if info, err := d.Info(); err == nil {
				ph.bucketBytes += uint64(info.Size())
			}
			if strings.Contains(filepath.ToSlash(path), "/"+recording.ThumbnailDir) {
				ph.thumbnails++
			}
		}
		return nil
	})
	if len(prefixes) > 0 {
		ph.probe = probe(filepath.Join(prefixes[0], filepath.FromSlash(recording.PlaylistKey)))
	}
	return nil
}

// probe says what ffprobe finds in a playlist: its streams and duration.
func probe(playlist string) string {
	if _, err := exec.LookPath("ffprobe"); err != nil {
		return "no ffprobe"
	}
	out, err := exec.Command("ffprobe", "-v", "error", "-print_format", "json", "-show_format", "-show_streams", playlist).Output()
	if err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			return "ffprobe failed: " + strings.TrimSpace(string(ee.Stderr))
		}
		return "ffprobe failed: " + err.Error()
	}
	var p testmedia.Probe
	if err := json.Unmarshal(out, &p); err != nil {
		return "ffprobe: " + err.Error()
	}
	var parts []string
	for _, s := range p.Streams {
		if s.CodecType == "video" {
			parts = append(parts, fmt.Sprintf("%s %dx%d", s.CodecName, s.Width, s.Height))
		} else {
			parts = append(parts, s.CodecName)
		}
	}
	d, _ := strconv.ParseFloat(p.Format.Duration, 64)
	return fmt.Sprintf("%s, %.1f s", strings.Join(parts, " + "), d)
}

// recordedShare is the recordings' duration over the publishers' sending
// time: under 1 when a recording lost time (it starts at a keyframe, and
// after a drop waits for one).
func (ph *recordPhase) recordedShare() float64 {
	if ph.published <= 0 {
		return 0
	}
	return ph.recorded.Seconds() / ph.published.Seconds()
}

func (ph *recordPhase) recordingSummary() string {
	return fmt.Sprintf("%d recordings ended (%d failed), %.1f s recorded of %.1f s published, %d playlists, bucket %.1f MB, %d thumbnails (ffmpeg: %.2f CPU s); ffprobe: %s",
		ph.recordings, ph.failed, ph.recorded.Seconds(), ph.published.Seconds(), ph.playlists, float64(ph.bucketBytes)/1e6,
		ph.thumbnails, ph.thumbCPU.Seconds(), ph.probe)
}

func (ph *recordPhase) jsonPhase(run int, offered float64) jsonPhase {
	p := ph.measurement.jsonPhase(run, offered)
	p.Record = &jsonRecord{Publishers: ph.publishers, Recording: ph.record, KeyframeRequests: ph.keyRequests}
	if ph.record {
		p.Record.Recordings, p.Record.Failed, p.Record.Playlists = ph.recordings, ph.failed, ph.playlists
		p.Record.RecordedSeconds, p.Record.PublishedSeconds = ph.recorded.Seconds(), ph.published.Seconds()
		p.Record.BucketBytes, p.Record.FFprobe = ph.bucketBytes, ph.probe
		p.Record.Thumbnails, p.Record.ThumbnailCPUSeconds = ph.thumbnails, ph.thumbCPU.Seconds()
	}
	return p
}

// recordFigures are a publisher count's figures, without and with
// recording, and what recording costs.
type recordFigures struct {
	off, on figures
	// The recordings: medians over the runs.
	recordings, failed, playlists float64
	share                         float64 // recorded / published
	bucketMB                      float64
	writtenMbps                   float64 // bucket bytes over the recorded duration, per recording
	thumbMS                       float64 // the thumbnails' ffmpeg: CPU ms per thumbnail
	probe                         string
}

// costs returns the CPU recording adds, in % of one core per recorded
// publisher, and in CPU milliseconds per second of media recorded in the
// window (each publisher's window times the share of its time recorded).
func (f recordFigures) costs(np int) (perPublisher, msPerMediaSecond float64) {
	extra := f.on.cpu - f.off.cpu // % of one core
	perPublisher = extra / float64(np)
	if f.share > 0 {
		msPerMediaSecond = extra / 100 * 1000 / (float64(np) * min(1, f.share))
	}
	return perPublisher, msPerMediaSecond
}

func recordMedians(o *options, results [][][2]*recordPhase) []recordFigures {
	out := make([]recordFigures, len(o.record))
	for i := range o.record {
		var off, on []figures
		var recs, failed, playlists, share, bucket, written, thumb []float64
		for _, run := range results {
			a, b := run[i][0], run[i][1]
			off = append(off, a.figures())
			on = append(on, b.figures())
			recs = append(recs, float64(b.recordings))
			failed = append(failed, float64(b.failed))
			playlists = append(playlists, float64(b.playlists))
			share = append(share, b.recordedShare())
			bucket = append(bucket, float64(b.bucketBytes)/1e6)
			if b.recorded > 0 {
				written = append(written, float64(b.bucketBytes)*8/b.recorded.Seconds()/1e6)
			}
			if b.thumbnails > 0 {
				thumb = append(thumb, float64(b.thumbCPU.Milliseconds())/float64(b.thumbnails))
			}
			out[i].probe = b.probe
		}
		out[i].off, out[i].on = medianFigures(off), medianFigures(on)
		out[i].recordings, out[i].failed, out[i].playlists = median(recs), median(failed), median(playlists)
		out[i].share, out[i].bucketMB, out[i].writtenMbps = median(share), median(bucket), median(written)
		out[i].thumbMS = median(thumb)
	}
	return out
}

// writeRecordReport renders the report of the record phases: the
// medians over the runs, then each run.
func writeRecordReport(o *options, results [][][2]*recordPhase) string {
	var b strings.Builder
	writeHeader(&b, o)
	fmt.Fprintf(&b, "- record: P publishers of the clip on one stage, %d subscribers each (a participant and a WHEP session each, joining %d at a time); the same stage once with `autoParticipantRecordingConfiguration` (AUDIO_VIDEO, to a bucket of the server's data folder) and once without, one after the other in the same run, each on a fresh server\n\n",
		o.recordSubs, o.joinConcurrency)
	b.WriteString("## Recording: what it costs, and what it does to forwarding\n\n")
	recordTable(&b, o, recordMedians(o, results))
	b.WriteString("\n## Each phase\n\n")
	phaseTable(&b, o, func(i int, rec bool) figures {
		var fs []figures
		for _, run := range results {
			fs = append(fs, run[i][btoi(rec)].figures())
		}
		return medianFigures(fs)
	})
	if o.runs > 1 {
		for r, run := range results {
			fmt.Fprintf(&b, "\n<details><summary>run %d</summary>\n\n", r+1)
			recordTable(&b, o, recordMedians(o, [][][2]*recordPhase{run}))
			b.WriteString("\n")
			phaseTable(&b, o, func(i int, rec bool) figures { return run[i][btoi(rec)].figures() })
			b.WriteString("\n</details>\n")
		}
	}
	b.WriteString("\n" + recordNotes)
	return b.String()
}

func btoi(b bool) int {
	if b {
		return 1
	}
	return 0
}

func recordTable(b *strings.Builder, o *options, fs []recordFigures) {
	b.WriteString("| publishers | SFU CPU without → with recording (% of one core) | recording's CPU per publisher (% of one core) | CPU ms per recorded media-second | loss without / with | latency p99 without / with ms | recordings ended (failed) | playlists | recorded / published | bucket MB | written Mbps per recording | thumbnails' ffmpeg, CPU ms each | ffprobe of one |\n")
	b.WriteString("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|\n")
	for i, np := range o.record {
		f := fs[i]
		per, ms := f.costs(np)
		fmt.Fprintf(b, "| %d | %.1f%% → %.1f%% | %+.2f%% | %.1f | %s / %s | %.1f / %.1f | %.0f (%.0f) | %.0f | %.1f%% | %.1f | %.2f | %.0f | %s |\n",
			np, f.off.cpu, f.on.cpu, per, ms, pct(f.off.loss), pct(f.on.loss), f.off.latP99, f.on.latP99,
			f.recordings, f.failed, f.playlists, 100*f.share, f.bucketMB, f.writtenMbps, f.thumbMS, f.probe)
	}
}

func phaseTable(b *strings.Builder, o *options, fig func(i int, rec bool) figures) {
	b.WriteString("| publishers | recording | subscribers | joined | packets/s forwarded | Mbps on the wire | loss | SFU CPU (% of one core) | of which ffmpeg | SFU CPU µs/packet | join → first packet p50 / p99 ms | latency p50 / p99 ms | server RSS MB | bench CPU (% of one core) | other CPU | rcvbuf drops |\n")
	b.WriteString("|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|\n")
	for i, np := range o.record {
		for _, rec := range []bool{false, true} {
			f := fig(i, rec)
			fmt.Fprintf(b, "| %d | %s | %d | %.0f | %s | %.0f | %s | %.1f%% | %.1f%% | %.1f | %.0f / %.0f | %.1f / %.1f | %.0f | %.0f%% | %.0f%% | %.0f |\n",
				np, onOff(rec), np*o.recordSubs, f.subscribed-f.failed, kilo(f.pps), f.mbps, pct(f.loss), f.cpu, f.child, f.usPerPkt,
				f.joinP50, f.joinP99, f.latP50, f.latP99, f.rssMB, f.self, f.other, f.drops)
		}
	}
}

const recordNotes = `### Columns

- **SFU CPU**: user + system time of the server process, and of the children it waited for, over
  the measured window (` + "`/proc/PID/stat`" + `, 10 ms ticks), as % of one core: with recording off (a
  stage without the configuration) and on, the same publishers and subscribers, each on a fresh
  server. The phases run one after the other, their order alternating run by run. **of which
  ffmpeg**: the children's part: the ffmpeg runs that make the recordings' thumbnails (the
  stage's default thumbnail configuration: one each 60 s, the first at the recording's first
  keyframe, so mostly before the window).
- **recording's CPU per publisher**: (with − without) / publishers. **CPU ms per recorded
  media-second**: the same difference in CPU milliseconds, over the seconds of media recorded in
  the window (publishers × window × recorded / published). Both are differences of two
  measurements that are each ±10% on this kind of machine: at one publisher they are within the
  noise; read the larger counts.
- **loss**: of the video packets each publisher sent in the window, × its subscribers, those
  that never arrived, after the drain. A subscriber tells which packet it got by its payload (see
  README.md); **latency** is send to arrival, one clock.
- **recordings ended (failed)**: recordings whose ` + "`events/recording-ended.json`" + ` (or
  ` + "`recording-failed.json`" + `) was written once the publishers left (WHIP DELETE); **playlists**: media
  playlists with segments and an ` + "`#EXT-X-ENDLIST`" + `. **recorded / published**: the recordings'
  ` + "`duration_ms`" + ` summed, over the publishers' sending times summed: a recording starts at the first
  keyframe, and after a drop waits for the next. **bucket MB**: everything in the bucket at the
  end (segments, init segments, playlists, metadata); **written Mbps per recording**: that, over
  the recorded duration. **thumbnails' ffmpeg**: the CPU of the server's children over the whole
  phase, over the thumbnails in the bucket: at the default interval a recording pays it once a
  minute. **ffprobe of one**: the first recording's media playlist read by ffprobe.
- **packets/s forwarded**, **Mbps on the wire**, **join → first packet**, **bench CPU**, **other
  CPU**, **rcvbuf drops**: as in the fan-out's report. A publisher answers a keyframe request
  with the clip's next keyframe at its next frame, as an encoder does.
`
