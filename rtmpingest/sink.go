package rtmpingest

import (
	"context"
	"time"
)

// sinkQueue is how many calls wait for a slow Stream before the
// connection's reading waits too (and TCP holds the encoder back): about
// 2 s of video and audio.
const sinkQueue = 160

type callKind int

const (
	callBegin callKind = iota
	callVideo
	callAudio
	callEnd
)

// call is one call of a Stream method.
type call struct {
	kind     callKind
	info     StreamInfo
	track    uint8
	pts      time.Duration
	nalus    [][]byte
	keyframe bool
	opus     []byte
	err      error
}

// sink calls a Stream's methods from one goroutine, in the order given,
// for the connection's reader and the audio transcoder alike.
type sink struct {
	stream Stream
	calls  chan call
	fail   context.CancelCauseFunc // stops the connection when the Stream fails
	done   chan struct{}           // closed after End
}

func newSink(stream Stream, fail context.CancelCauseFunc) *sink {
	return &sink{stream: stream, calls: make(chan call, sinkQueue), fail: fail, done: make(chan struct{})}
}

func (s *sink) run() {
	defer close(s.done)
	var failed error
	for c := range s.calls {
		if c.kind == callEnd {
			if failed != nil {
				c.err = failed
			}
			s.stream.End(c.err)
			return
		}
		if failed != nil {
			continue // the stream is over: what is still queued is dropped
		}
		var err error
		switch c.kind {
		case callBegin:
			err = s.stream.Begin(c.info)
		case callVideo:
			err = s.stream.WriteVideo(c.track, c.pts, c.nalus, c.keyframe)
		case callAudio:
			err = s.stream.WriteAudio(c.pts, c.opus)
		}
		if err != nil {
			failed = err
			s.fail(err)
		}
	}
}

// send queues a call; it waits while the queue is full, until ctx ends.
func (s *sink) send(ctx context.Context, c call) error {
	select {
	case s.calls <- c:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// end queues End(err), the last call; nothing may be sent after it.
func (s *sink) end(err error) {
	s.calls <- call{kind: callEnd, err: err}
}
