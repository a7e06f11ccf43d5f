package main

import (
	"context"
	"fmt"
	"net/url"
	"path/filepath"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt"
	"github.com/ivsrt/ivsrt/api"
	"github.com/ivsrt/ivsrt/recording"
	"github.com/ivsrt/ivsrt/sfu"
)

// defaultMaxCompositions is how many compositions a server runs at once by
// default: each encodes video, about a core at 720p30.
const defaultMaxCompositions = 2

// compositionChannels parses --composition-channel values, each
// CHANNEL_ARN=RTMP_URL: where a composition's channel destination sends.
func compositionChannels(values []string) (map[string]string, error) {
	out := map[string]string{}
	for _, v := range values {
		arn, target, ok := strings.Cut(v, "=")
		var check ivsrt.Validation
		if !ok || !check.ChannelARN("channel", arn) {
			return nil, fmt.Errorf("--composition-channel %q: want CHANNEL_ARN=rtmp(s)://host/app/key, the ARN arn:aws:ivs:REGION:ACCOUNT:channel/ID", v)
		}
		u, err := url.Parse(target)
		if err != nil || (u.Scheme != "rtmp" && u.Scheme != "rtmps") || u.Host == "" {
			return nil, fmt.Errorf("--composition-channel %s: the target %q is not an rtmp:// or rtmps:// URL", arn, target)
		}
		out[arn] = target
	}
	return out, nil
}

// compositionOption is how the media plane runs compositions: with ffmpeg
// and on a single server; none otherwise (said in the log).
func (m *Main) compositionOption(channels map[string]string) (sfu.Option, bool) {
	if m.Node != nil {
		m.Logger.Warn("compositions are not run in a cluster yet: StartComposition is refused")
		return nil, false
	}
	ffmpeg, err := recording.FFmpegPath()
	if err != nil {
		m.Logger.Warn("ffmpeg is not installed: compositions cannot run, StartComposition is refused (Debian: apt-get install ffmpeg)")
		return nil, false
	}
	return sfu.WithCompositions(sfu.CompositionConfig{
		Store:    m.DB,
		FFmpeg:   ffmpeg,
		Max:      m.Config.MaxCompositions,
		Channels: channels,
		WorkDir:  filepath.Join(m.Config.DataDir, "compositions"),
	}), true
}

// compositorOption gives the API the media plane's compositions when it
// runs them; without, StartComposition is refused.
func compositorOption(media *sfu.Server, composing bool) api.Option {
	if !composing {
		return func(*api.Server) {}
	}
	return api.WithCompositor(media)
}

// failInterruptedCompositions ends the compositions the store still has
// running: on a single server that starts, none runs yet (the last run
// may have ended with kill -9). Each is FAILED, with its Session Failure.
func failInterruptedCompositions(ctx context.Context, db ivsrt.CompositionStore, now time.Time) (int, error) {
	n := 0
	page := ivsrt.Page{Limit: 100}
	for {
		cs, next, err := db.ListCompositions(ctx, ivsrt.CompositionFilter{}, page)
		if err != nil {
			return n, err
		}
		for _, c := range cs {
			if c.State.Ended() {
				continue
			}
			const reason = "the server stopped while the composition ran"
			events := []*ivsrt.StreamEvent{}
			for i := range c.Destinations {
				d := &c.Destinations[i]
				if d.State.Ended() {
					continue
				}
				d.State, d.EndTime = ivsrt.DestinationFailed, now
				events = append(events, ivsrt.NewCompositionStreamEvent(c, ivsrt.StreamCompositionDestinationFailure, d.ID, reason, now))
			}
			c.State, c.EndTime = ivsrt.CompositionFailed, now
			events = append(events, ivsrt.NewCompositionStreamEvent(c, ivsrt.StreamCompositionSessionFailure, "", reason, now))
			if err := db.UpdateComposition(ctx, c, events...); err != nil && ivsrt.ErrorCode(err) != ivsrt.ENOTFOUND {
				return n, err
			}
			n++
		}
		if next == "" {
			return n, nil
		}
		page.After = next
	}
}
