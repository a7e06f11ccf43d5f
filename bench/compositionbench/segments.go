package main

import (
	"bufio"
	"context"
	"errors"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
)

// The S3 destination's real-time factor comes from its HLS: ffmpeg
// writes the segments into a folder of the server's (under its data
// folder's compositions/), each file made when the one before is
// complete, and the server uploads them from there. The bench notes when
// each segment's file first appears, and once the composition has
// stopped reads their durations from the playlist in the bucket.

// segmentWatch polls a folder for segment files (.ts).
type segmentWatch struct {
	stop context.CancelFunc
	done chan struct{}

	mu    sync.Mutex
	first map[string]time.Time // a segment's name → when it was first seen
}

// watchSegments polls dir and everything below it every 20 ms.
func watchSegments(dir string) *segmentWatch {
	ctx, cancel := context.WithCancel(context.Background())
	w := &segmentWatch{stop: cancel, done: make(chan struct{}), first: map[string]time.Time{}}
	go func() {
		defer close(w.done)
		t := time.NewTicker(20 * time.Millisecond)
		defer t.Stop()
		for {
			now := time.Now()
			filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
				if err == nil && !d.IsDir() && strings.HasSuffix(d.Name(), ".ts") {
					w.mu.Lock()
					if _, ok := w.first[d.Name()]; !ok {
						w.first[d.Name()] = now
					}
					w.mu.Unlock()
				}
				return nil
			})
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
	}()
	return w
}

// seen returns the segments seen so far and when each appeared.
func (w *segmentWatch) seen() map[string]time.Time {
	w.mu.Lock()
	defer w.mu.Unlock()
	m := make(map[string]time.Time, len(w.first))
	for k, v := range w.first {
		m[k] = v
	}
	return m
}

func (w *segmentWatch) close() {
	w.stop()
	<-w.done
}

// segment is one segment of a media playlist.
type segment struct {
	name     string
	duration time.Duration
}

// parsePlaylist reads a media playlist's segments, in order.
func parsePlaylist(data string) []segment {
	var segs []segment
	var d time.Duration
	sc := bufio.NewScanner(strings.NewReader(data))
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if rest, ok := strings.CutPrefix(line, "#EXTINF:"); ok {
			secs, _, _ := strings.Cut(rest, ",")
			f, err := strconv.ParseFloat(secs, 64)
			if err == nil {
				d = time.Duration(math.Round(f * float64(time.Second)))
			}
			continue
		}
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		segs = append(segs, segment{name: line, duration: d})
		d = 0
	}
	return segs
}

// findPlaylist returns the media playlist under dir (the bucket): the
// one under media/hls/ that names segments.
func findPlaylist(dir string) (string, error) {
	var found string
	filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && d.Name() == "playlist.m3u8" && strings.Contains(filepath.ToSlash(path), "/media/hls/") {
			found = path
		}
		return nil
	})
	if found == "" {
		return "", errors.New("no media playlist in the bucket")
	}
	data, err := os.ReadFile(found)
	return string(data), err
}

// hlsRate is the media the encoder wrote between two moments: of the
// segments in order, those whose next segment appeared in [from, to],
// from the first such appearance to the last. A segment is complete when
// the next one appears. It returns the media time, the wall time it took
// and the count of segments.
func hlsRate(segs []segment, appeared map[string]time.Time, from, to time.Time) (media, wall time.Duration, n int) {
	var first, last time.Time
	for i := 0; i+1 < len(segs); i++ {
		at, ok := appeared[segs[i+1].name]
		if !ok || at.Before(from) || at.After(to) {
			continue
		}
		if first.IsZero() {
			// Segment i was complete at the window's first mark: count from
			// there, without it.
			first = at
			continue
		}
		media += segs[i].duration
		last = at
		n++
	}
	if n == 0 {
		return 0, 0, 0
	}
	return media, last.Sub(first), n
}
