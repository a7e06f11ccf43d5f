// Package engine is the media engine of server-side composition: it takes
// the live media of a stage's publishers, draws their video on one canvas
// by a layout that may change at any moment, mixes their audio, and
// encodes the result once (H.264 + AAC) to HLS and/or RTMP outputs.
//
// There is no pure-Go H.264, AAC or Opus codec, so the codec work runs in
// ffmpeg processes and Go does the rest:
//
//   - each input has a video decoder (H.264 Annex-B or VP8 IVF on stdin,
//     raw yuv420p on stdout, already cropped and scaled to its tile's
//     picture) and an audio decoder (Ogg Opus in, 48 kHz stereo PCM out).
//     Go depacketizes the RTP. When a tile's size or crop changes only that
//     input's video decoder is restarted, and it is fed the access units
//     since the last keyframe so that the picture comes back at once;
//   - a Go compositor ticks at the output frame rate, copies each input's
//     latest frame into a canvas (back to front) and mixes 20 ms of audio
//     at a time;
//   - one encoder takes the canvas on stdin and the mix on fd 3 and writes
//     every output from a single encode (the tee muxer when there are
//     several).
//
// Nothing waits on an input: every hand-over between goroutines is a
// bounded queue that drops (and counts) when full, and no lock is held
// across I/O. A dead input decoder is reported and restarted; a dead
// encoder ends the engine with its cause.
package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ivsrt/ivsrt/composition/layout"
)

// Defaults are those of an IVS encoder configuration.
const (
	DefaultWidth   = 1280
	DefaultHeight  = 720
	DefaultFPS     = 30
	DefaultBitrate = 2_500_000
)

// ErrClosed is returned for work given to an engine that has ended.
var ErrClosed = errors.New("engine: closed")

// Config is an engine's configuration. The zero values of the numbers
// take IVS's defaults.
type Config struct {
	// FFmpeg is the ffmpeg binary, a path or a name looked up in PATH;
	// "ffmpeg" if empty.
	FFmpeg        string
	Width, Height int // even, 2 to layout.MaxCanvasSide
	FPS           int
	Bitrate       int // video bits per second
	Outputs       []Output
	Logger        *slog.Logger

	// OnInputError, if set, is told when an input's decoder fails; the
	// engine restarts it (after a pause if it keeps failing).
	OnInputError func(inputID string, err error)
	// OnKeyframeNeeded, if set, is asked for a keyframe of an input's
	// video (the caller sends its publisher a PLI): a decoder starts, or
	// video was dropped.
	OnKeyframeNeeded func(inputID string)
	// OnVideoSize, if set, is told an input's video size when it is first
	// known and when it changes, so that the layout can be redone with it.
	OnVideoSize func(inputID string, width, height int)
}

func (c Config) withDefaults() (Config, error) {
	if c.FFmpeg == "" {
		c.FFmpeg = "ffmpeg"
	}
	if c.Width == 0 && c.Height == 0 {
		c.Width, c.Height = DefaultWidth, DefaultHeight
	}
	if c.FPS == 0 {
		c.FPS = DefaultFPS
	}
	if c.Bitrate == 0 {
		c.Bitrate = DefaultBitrate
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch {
	case c.Width < 2 || c.Height < 2 || c.Width%2 != 0 || c.Height%2 != 0 ||
		c.Width > layout.MaxCanvasSide || c.Height > layout.MaxCanvasSide:
		return c, fmt.Errorf("engine: size %dx%d: want even sides from 2 to %d", c.Width, c.Height, layout.MaxCanvasSide)
	case c.FPS < 1 || c.FPS > 60:
		return c, fmt.Errorf("engine: frame rate %d: want 1 to 60", c.FPS)
	case c.Bitrate < 10_000:
		return c, fmt.Errorf("engine: bit rate %d: want at least 10000", c.Bitrate)
	case len(c.Outputs) == 0:
		return c, errors.New("engine: no output")
	}
	for _, o := range c.Outputs {
		if err := o.validate(); err != nil {
			return c, err
		}
	}
	return c, nil
}

// Engine composes its inputs into one encoded stream until it is closed or
// its encoder fails.
type Engine struct {
	cfg    Config
	log    *slog.Logger
	ctx    context.Context // the engine's lifetime
	cancel context.CancelCauseFunc
	wg     sync.WaitGroup
	done   chan struct{}
	err    error // why it ended; set before done closes

	mu      sync.Mutex // guards inputs (not the inputs themselves)
	inputs  map[string]*Input
	ended   bool
	inputsV atomic.Pointer[map[string]*Input] // snapshot for the compositor
	scene   atomic.Pointer[scene]             // the layout the compositor draws

	enc   *proc
	video chan []byte // canvases to the encoder
	audio chan []byte // mixed chunks to the encoder
	free  chan []byte // canvases the encoder writer is done with
	// started is closed when the encoder has taken its first frame.
	started  chan struct{}
	accepted sync.Once

	stats struct {
		framesSent, framesDropped, chunksDropped, framesLate atomic.Int64
		processCPU                                           atomic.Int64 // ns, of exited processes
	}
}

// errClosing is the cause given to the lifetime context by Close.
var errClosing = errors.New("engine: closing")

// New starts an engine: its encoder, and a compositor that draws a black
// canvas and silence until inputs and a layout are given. It fails when
// ffmpeg is missing or the configuration is invalid; ctx ends the engine
// as Close does.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if cfg.FFmpeg, err = lookFFmpeg(cfg.FFmpeg); err != nil {
		return nil, err
	}
	e := &Engine{
		cfg:     cfg,
		log:     cfg.Logger.With("component", "composition"),
		done:    make(chan struct{}),
		inputs:  make(map[string]*Input),
		video:   make(chan []byte, 4),
		audio:   make(chan []byte, 100), // 2 s: audio is small, and a gap is heard
		free:    make(chan []byte, 6),
		started: make(chan struct{}),
	}
	e.inputsV.Store(&map[string]*Input{})
	e.scene.Store(&scene{})
	e.ctx, e.cancel = context.WithCancelCause(context.WithoutCancel(ctx))

	if err := e.startEncoder(); err != nil {
		return nil, err
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.compose()
	}()
	go e.lifecycle(ctx)
	return e, nil
}

// Started is closed when the encoder has taken its first frame: the
// outputs' timeline starts then.
func (e *Engine) Started() <-chan struct{} { return e.started }

// Done is closed when the engine has ended and everything it started has
// stopped.
func (e *Engine) Done() <-chan struct{} { return e.done }

// Err is why the engine ended: nil after Close, the encoder's failure, or
// the context's error. It is nil while the engine runs.
func (e *Engine) Err() error {
	select {
	case <-e.done:
		return e.err
	default:
		return nil
	}
}

// Close ends the engine: the encoder finishes its outputs (the HLS
// playlist gets its end), every process and goroutine stops. It returns
// what Err returns.
func (e *Engine) Close() error {
	e.cancel(errClosing)
	<-e.done
	return e.err
}

// fail ends the engine because of err.
func (e *Engine) fail(err error) { e.cancel(err) }

// lifecycle waits for the end, whatever its cause, and tears down.
func (e *Engine) lifecycle(parent context.Context) {
	select {
	case <-parent.Done():
		e.cancel(parent.Err())
	case <-e.ctx.Done():
	}
	e.mu.Lock()
	e.ended = true
	inputs := make([]*Input, 0, len(e.inputs))
	for _, in := range e.inputs {
		inputs = append(inputs, in)
	}
	e.inputs = map[string]*Input{}
	e.mu.Unlock()
	for _, in := range inputs {
		in.stop()
	}
	e.wg.Wait() // the compositor, the encoder's writers and watcher, the inputs
	if cause := context.Cause(e.ctx); !errors.Is(cause, errClosing) {
		e.err = cause
	}
	close(e.done)
}

// Stats are counters of an engine's work.
type Stats struct {
	// FramesSent counts the canvases given to the encoder: over the
	// frame rate, how far the output has got.
	FramesSent int64
	// FramesDropped and ChunksDropped are canvases and 20 ms of mix the
	// encoder was too slow to take; FramesLate are frames given up on to
	// catch up with the clock after a stall.
	FramesDropped, ChunksDropped, FramesLate int64
	// ProcessCPU is the user and system time of the ffmpeg processes that
	// have exited; after Close, of all of them.
	ProcessCPU time.Duration
	// Inputs are the inputs' own counters.
	Inputs map[string]InputStats
}

// Stats returns the engine's counters.
func (e *Engine) Stats() Stats {
	s := Stats{
		FramesSent:    e.stats.framesSent.Load(),
		FramesDropped: e.stats.framesDropped.Load(),
		ChunksDropped: e.stats.chunksDropped.Load(),
		FramesLate:    e.stats.framesLate.Load(),
		ProcessCPU:    time.Duration(e.stats.processCPU.Load()),
		Inputs:        map[string]InputStats{},
	}
	for _, in := range *e.inputsV.Load() {
		s.Inputs[in.id] = in.Stats()
	}
	return s
}

// account adds an exited process's CPU time.
func (e *Engine) account(p *proc) {
	<-p.done
	e.stats.processCPU.Add(int64(p.cpu))
}

// AddInput adds the input of a publishing participant, id being the
// participant's id as the layout's tiles name it.
func (e *Engine) AddInput(id string) (*Input, error) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.ended {
		return nil, ErrClosed
	}
	if _, ok := e.inputs[id]; ok {
		return nil, fmt.Errorf("engine: input %q already added", id)
	}
	in := newInput(e, id)
	e.inputs[id] = in
	e.publishInputs()
	// The input may already have a tile.
	in.setTile(e.scene.Load().tiles[id])
	return in, nil
}

// RemoveInput removes an input and stops its decoders; its tile, if the
// layout still has one, shows nothing.
func (e *Engine) RemoveInput(id string) {
	e.mu.Lock()
	in, ok := e.inputs[id]
	delete(e.inputs, id)
	if ok {
		e.publishInputs()
	}
	e.mu.Unlock()
	if ok {
		in.stop()
	}
}

// publishInputs stores a snapshot of the inputs for the compositor, which
// reads it without a lock. Called with mu held.
func (e *Engine) publishInputs() {
	m := make(map[string]*Input, len(e.inputs))
	for id, in := range e.inputs {
		m[id] = in
	}
	e.inputsV.Store(&m)
}

// SetLayout makes tiles the picture from the next frame on; tiles are
// drawn in order of Z, then as listed (layout.Arrange's order). A tile
// names its input by ParticipantID; one whose input is not (yet) added
// shows its empty slot. Inputs without a tile are heard but not seen.
func (e *Engine) SetLayout(tiles []layout.Tile) error {
	canvas := layout.Rect{Width: e.cfg.Width, Height: e.cfg.Height}
	sc := &scene{tiles: make(map[string]layout.Tile, len(tiles))}
	for _, t := range tiles {
		if !t.Slot.Within(canvas) || !t.Picture.Within(canvas) || t.Slot.Empty() {
			return fmt.Errorf("engine: tile of %q (slot %v, picture %v) is not inside the %dx%d canvas",
				t.ParticipantID, t.Slot, t.Picture, e.cfg.Width, e.cfg.Height)
		}
		if _, dup := sc.tiles[t.ParticipantID]; dup {
			return fmt.Errorf("engine: two tiles for %q", t.ParticipantID)
		}
		sc.tiles[t.ParticipantID] = t
		sc.order = append(sc.order, t)
	}
	sortByZ(sc.order)
	e.scene.Store(sc)

	e.mu.Lock()
	inputs := make([]*Input, 0, len(e.inputs))
	for _, in := range e.inputs {
		inputs = append(inputs, in)
	}
	e.mu.Unlock()
	for _, in := range inputs {
		in.setTile(sc.tiles[in.id])
	}
	return nil
}
