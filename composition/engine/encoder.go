package engine

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// Output is one destination of the composed stream: exactly one of HLS
// and RTMP is set.
type Output struct {
	HLS *HLS
	// RTMP is the URL of a live channel's ingest, rtmp:// or rtmps://,
	// stream key included.
	RTMP string
}

// HLS writes the stream as an HLS rendition into a local directory, for
// another part to upload (IVS's layout puts it under media/hls/).
type HLS struct {
	// Dir is the directory the playlist and segments are written to; it
	// must exist.
	Dir string
	// Playlist is the media playlist's file name; "playlist.m3u8" if empty.
	Playlist string
	// Segment is the segments' file name pattern, with one %d for the
	// segment's number; "%d.ts" if empty.
	Segment string
	// SegmentDuration is the target duration of a segment; 2 s (the
	// keyframe interval) if zero. Segments are cut at keyframes, which come
	// every 2 s, so a duration that is a multiple of 2 s is kept exactly.
	SegmentDuration time.Duration
}

func (h HLS) withDefaults() HLS {
	if h.Playlist == "" {
		h.Playlist = "playlist.m3u8"
	}
	if h.Segment == "" {
		h.Segment = "%d.ts"
	}
	if h.SegmentDuration <= 0 {
		h.SegmentDuration = 2 * time.Second
	}
	return h
}

func (o Output) validate() error {
	switch {
	case (o.HLS == nil) == (o.RTMP == ""):
		return errors.New("engine: an output needs exactly one of HLS and RTMP")
	case o.HLS != nil && o.HLS.Dir == "":
		return errors.New("engine: an HLS output needs a directory")
	case o.HLS != nil && strings.Count(o.HLS.withDefaults().Segment, "%d") != 1:
		return fmt.Errorf("engine: HLS segment name %q needs one %%d", o.HLS.Segment)
	case o.RTMP != "" && !strings.HasPrefix(o.RTMP, "rtmp://") && !strings.HasPrefix(o.RTMP, "rtmps://"):
		return fmt.Errorf("engine: RTMP output %q is not an rtmp:// or rtmps:// URL", o.RTMP)
	}
	return nil
}

// Audio is mixed and sent to the encoder as 48 kHz stereo s16le, the
// rate Opus decodes at.
const (
	sampleRate   = 48000
	channels     = 2
	chunkSamples = sampleRate / 50 // 20 ms, one Opus packet's worth
	chunkBytes   = chunkSamples * channels * 2
	chunkPeriod  = 20 * time.Millisecond
)

// encoderArgs is the encoder's command line: raw yuv420p canvases on
// stdin, the mix as PCM on fd 3, one H.264 + AAC encode sent to every
// output.
func encoderArgs(c Config) []string {
	gop := strconv.Itoa(2 * c.FPS) // a keyframe every 2 s, as IVS does
	kbps := strconv.Itoa(c.Bitrate/1000) + "k"
	buf := strconv.Itoa(2*c.Bitrate/1000) + "k"
	// The raw inputs are fully described here: probing them would only
	// hold the start back until seconds of media had been read.
	args := []string{"-hide_banner", "-nostdin", "-loglevel", "error",
		"-probesize", "32", "-analyzeduration", "0", "-f", "rawvideo", "-pix_fmt", "yuv420p", "-video_size", fmt.Sprintf("%dx%d", c.Width, c.Height),
		"-framerate", strconv.Itoa(c.FPS), "-thread_queue_size", "64", "-i", "pipe:0",
		"-probesize", "32", "-analyzeduration", "0", "-f", "s16le", "-ar", strconv.Itoa(sampleRate), "-ac", strconv.Itoa(channels),
		"-thread_queue_size", "512", "-i", "pipe:3",
		"-map", "0:v", "-map", "1:a",
		// No B-frames (live players and IVS channels expect none) and a
		// fixed GOP without scene-cut keyframes, so that segments are
		// cut every 2 s exactly.
		"-c:v", "libx264", "-preset", "veryfast", "-profile:v", "high", "-pix_fmt", "yuv420p",
		"-bf", "0", "-g", gop, "-keyint_min", gop, "-sc_threshold", "0",
		"-b:v", kbps, "-maxrate", kbps, "-bufsize", buf,
		"-c:a", "aac", "-b:a", "128k", "-ar", strconv.Itoa(sampleRate), "-ac", strconv.Itoa(channels),
	}
	if len(c.Outputs) == 1 {
		return append(args, outputArgs(c.Outputs[0])...)
	}
	// Several outputs share one encode through the tee muxer. Its
	// outputs need the codecs' headers out of band (FLV does); MPEG-TS
	// puts them back in band with the bitstream filter.
	args = append(args, "-flags:v", "+global_header", "-flags:a", "+global_header", "-f", "tee")
	var specs []string
	for _, o := range c.Outputs {
		specs = append(specs, teeSpec(o))
	}
	return append(args, strings.Join(specs, "|"))
}

// outputArgs are the muxer's arguments for o alone.
func outputArgs(o Output) []string {
	if o.RTMP != "" {
		return []string{"-f", "flv", o.RTMP}
	}
	h := o.HLS.withDefaults()
	return []string{"-f", "hls", "-hls_time", seconds(h.SegmentDuration), "-hls_list_size", "0",
		"-hls_flags", "independent_segments", "-hls_segment_filename", filepath.Join(h.Dir, h.Segment),
		filepath.Join(h.Dir, h.Playlist)}
}

// teeSpec is o as one of the tee muxer's outputs: [options]target.
func teeSpec(o Output) string {
	if o.RTMP != "" {
		return "[f=flv]" + teeEscape(o.RTMP, 1)
	}
	h := o.HLS.withDefaults()
	opts := []string{"f=hls", "bsfs/v=h264_mp4toannexb", "hls_time=" + seconds(h.SegmentDuration),
		"hls_list_size=0", "hls_flags=independent_segments",
		"hls_segment_filename=" + teeEscape(filepath.Join(h.Dir, h.Segment), 3)}
	return "[" + strings.Join(opts, ":") + "]" + teeEscape(filepath.Join(h.Dir, h.Playlist), 1)
}

// teeEscape escapes the characters the tee muxer's parser gives a meaning
// to (separators, quotes, backslash), so that a path or URL reaches its
// muxer as given. The parser unescapes a target once (splitting outputs
// on "|") and an option's value three times (that split, the "[...]"
// around the options, then their "key=value:..." list), hence levels.
func teeEscape(s string, levels int) string {
	for range levels {
		var b strings.Builder
		for _, r := range s {
			if strings.ContainsRune(`\'[]|:=`, r) {
				b.WriteByte('\\')
			}
			b.WriteRune(r)
		}
		s = b.String()
	}
	return s
}

func seconds(d time.Duration) string {
	return strconv.FormatFloat(d.Seconds(), 'f', -1, 64)
}
