package engine

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"time"

	"github.com/ivsrt/ivsrt/composition/layout"
)

// scene is the layout the compositor draws, replaced whole by SetLayout.
type scene struct {
	order []layout.Tile // back to front
	tiles map[string]layout.Tile
}

func sortByZ(tiles []layout.Tile) {
	slices.SortStableFunc(tiles, func(a, b layout.Tile) int { return a.Z - b.Z })
}

// startEncoder starts the encoder and the goroutines that feed and watch it.
func (e *Engine) startEncoder() error {
	vr, vw, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	ar, aw, err := os.Pipe()
	if err != nil {
		vr.Close()
		vw.Close()
		return fmt.Errorf("engine: %w", err)
	}
	p, err := startProc("encoder", e.cfg.FFmpeg, encoderArgs(e.cfg), vr, nil, ar)
	if err != nil {
		vw.Close()
		aw.Close()
		return err
	}
	e.enc = p
	e.log.Info("encoder started", "pid", p.pid(), "size", fmt.Sprintf("%dx%d", e.cfg.Width, e.cfg.Height),
		"fps", e.cfg.FPS, "bitrate", e.cfg.Bitrate, "outputs", len(e.cfg.Outputs))

	// Each pipe has its own writer, so that the encoder reading one input
	// while the other's pipe is full never blocks the compositor.
	var writers [2]chan struct{}
	for i, w := range []struct {
		f *os.File
		q chan []byte
		r bool // return buffers to free
	}{{vw, e.video, true}, {aw, e.audio, false}} {
		writers[i] = make(chan struct{})
		e.wg.Add(1)
		go func() {
			defer e.wg.Done()
			defer close(writers[i])
			e.feed(w.f, w.q, w.r)
		}()
	}
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.watchEncoder(writers)
	}()
	return nil
}

// feed writes what comes on q to f until the engine ends, then closes f so
// that the encoder sees the end of its input and finishes its outputs.
func (e *Engine) feed(f *os.File, q chan []byte, recycle bool) {
	defer f.Close()
	for {
		select {
		case b := <-q:
			_, err := f.Write(b)
			if recycle && err == nil {
				e.accepted.Do(func() { close(e.started) })
			}
			if recycle {
				select {
				case e.free <- b:
				default:
				}
			}
			if err != nil {
				return // the encoder is gone; watchEncoder reports why

			}
		case <-e.ctx.Done():
			return
		}
	}
}

// encoderGrace is how long a closing encoder has to finish its outputs
// before it is killed.
const encoderGrace = 10 * time.Second

// watchEncoder ends the engine when the encoder exits on its own, and on
// the engine's end gives it encoderGrace to finish after its inputs close.
func (e *Engine) watchEncoder(writers [2]chan struct{}) {
	defer e.account(e.enc)
	select {
	case <-e.enc.done:
		err := e.enc.err
		if err == nil {
			err = fmt.Errorf("encoder exited: %s", e.enc.stderr.String())
		}
		err = e.redact(err)
		e.log.Error("encoder failed", "err", err)
		e.fail(fmt.Errorf("engine: %w", err))
		return
	case <-e.ctx.Done():
	}
	for _, w := range writers {
		<-w
	}
	t := time.NewTimer(encoderGrace)
	defer t.Stop()
	select {
	case <-e.enc.done:
		if e.enc.err != nil {
			e.log.Warn("encoder ended with an error", "err", e.redact(e.enc.err))
		}
	case <-t.C:
		e.log.Warn("encoder did not finish in time; killed")
		e.enc.kill()
		<-e.enc.done
	}
}

// compose is the compositor: at each frame's time it draws the canvas and
// mixes the audio due, and hands both to the encoder's writers without
// waiting. Frames and chunks are counted against the clock from the start,
// so the encoder's timeline (which counts them) stays on the wall clock and
// audio stays with video; a frame the queue has no room for is sent later,
// duplicated, and after a long stall the lateness is given up.
func (e *Engine) compose() {
	frameSize := e.cfg.Width * e.cfg.Height * 3 / 2
	period := time.Second / time.Duration(e.cfg.FPS)
	tick := time.NewTicker(period)
	defer tick.Stop()
	var frames, chunks int64 // sent so far
	maxLate := int64(2 * e.cfg.FPS)
	mix := newMixer()

	// The clock starts when the encoder has taken the first frame: it
	// takes a moment to start, and a timeline begun before would open
	// with a stall to give up on.
	buf := make([]byte, frameSize)
	e.draw(buf)
	e.video <- buf // the queue is empty
	e.stats.framesSent.Add(1)
	for ; chunks < 5; chunks++ {
		e.audio <- mix.next(*e.inputsV.Load())
	}
	select {
	case <-e.started:
	case <-e.ctx.Done():
		return
	}
	frames = 1
	start := time.Now().Add(-period)
	for {
		elapsed := time.Since(start)
		dueFrames := int64(elapsed/period) + 1
		if dueFrames-frames > maxLate {
			e.stats.framesLate.Add(dueFrames - frames - 1)
			frames = dueFrames - 1
		}
		// The mix follows the frames sent rather than the clock, so that
		// whatever the video loses (a stall given up on) the audio loses
		// too, and the two stay together in the encoder's timeline.
		dueChunks := int64(time.Duration(frames+1)*period/chunkPeriod) + 1
		for ; chunks < dueChunks; chunks++ {
			b := mix.next(*e.inputsV.Load())
			select {
			case e.audio <- b:
			default:
				e.stats.chunksDropped.Add(1)
			}
		}
		if frames < dueFrames {
			var buf []byte
			select {
			case buf = <-e.free:
			default:
				buf = make([]byte, frameSize)
			}
			e.draw(buf)
			for frames < dueFrames {
				select {
				case e.video <- buf:
					frames++
					e.stats.framesSent.Add(1)
					if frames < dueFrames { // a duplicate needs its own buffer
						buf = slices.Clone(buf)
					}
					continue
				default:
					e.stats.framesDropped.Add(1)
				}
				break
			}
		}
		select {
		case <-tick.C:
		case <-e.ctx.Done():
			return
		}
	}
}

// Limited-range black, the background of the canvas and of every slot.
const (
	blackY  = 16
	blackUV = 128
)

// draw composes the current scene into buf, a yuv420p canvas.
func (e *Engine) draw(buf []byte) {
	W, H := e.cfg.Width, e.cfg.Height
	c := planes(buf, W, H)
	fill(c, layout.Rect{Width: W, Height: H})
	sc := e.scene.Load()
	inputs := *e.inputsV.Load()
	for _, t := range sc.order {
		fill(c, t.Slot)
		if !t.ShowsVideo {
			continue
		}
		in := inputs[t.ParticipantID]
		if in == nil {
			continue
		}
		f := in.frame.Load()
		if f == nil {
			continue // nothing decoded yet: the slot stays empty
		}
		blit(c, t.Picture, f)
	}
}

// yuv is a yuv420p picture's planes.
type yuv struct {
	w, h    int
	y, u, v []byte
}

func planes(b []byte, w, h int) yuv {
	ys, cs := w*h, (w/2)*(h/2)
	return yuv{w: w, h: h, y: b[:ys], u: b[ys : ys+cs], v: b[ys+cs : ys+2*cs]}
}

// fill paints r black. Rows are copied from a black row rather than set
// byte by byte: copy is a memmove, many times faster.
func fill(c yuv, r layout.Rect) {
	black := blackRow(r.Width)
	for y := r.Y; y < r.Y+r.Height; y++ {
		copy(c.y[y*c.w+r.X:][:r.Width], black.y)
	}
	cw := c.w / 2
	for y := r.Y / 2; y < (r.Y+r.Height)/2; y++ {
		copy(c.u[y*cw+r.X/2:][:r.Width/2], black.uv)
		copy(c.v[y*cw+r.X/2:][:r.Width/2], black.uv)
	}
}

type row struct{ y, uv []byte }

var blackRows = func() row {
	r := row{y: make([]byte, layout.MaxCanvasSide), uv: make([]byte, layout.MaxCanvasSide/2)}
	for i := range r.y {
		r.y[i] = blackY
	}
	for i := range r.uv {
		r.uv[i] = blackUV
	}
	return r
}()

func blackRow(w int) row { return row{y: blackRows.y[:w], uv: blackRows.uv[:w/2]} }

// blit draws frame f into r of the canvas. A decoder makes frames of the
// tile's picture size, copied row by row; while a restarted decoder has
// not yet caught up with a new size, the old frame is scaled to fit
// (nearest neighbour: it is seen for a few frames at most).
func blit(c yuv, r layout.Rect, f *frame) {
	src := planes(f.data, f.w, f.h)
	if f.w == r.Width && f.h == r.Height {
		for y := range r.Height {
			copy(c.y[(r.Y+y)*c.w+r.X:][:r.Width], src.y[y*f.w:][:r.Width])
		}
		cw, fw := c.w/2, f.w/2
		for y := range r.Height / 2 {
			copy(c.u[(r.Y/2+y)*cw+r.X/2:][:r.Width/2], src.u[y*fw:][:r.Width/2])
			copy(c.v[(r.Y/2+y)*cw+r.X/2:][:r.Width/2], src.v[y*fw:][:r.Width/2])
		}
		return
	}
	scalePlane(c.y, c.w, r.X, r.Y, r.Width, r.Height, src.y, f.w, f.w, f.h)
	scalePlane(c.u, c.w/2, r.X/2, r.Y/2, r.Width/2, r.Height/2, src.u, f.w/2, f.w/2, f.h/2)
	scalePlane(c.v, c.w/2, r.X/2, r.Y/2, r.Width/2, r.Height/2, src.v, f.w/2, f.w/2, f.h/2)
}

func scalePlane(dst []byte, dstStride, x0, y0, w, h int, src []byte, srcStride, sw, sh int) {
	if sw == 0 || sh == 0 {
		return
	}
	for y := range h {
		sy := y * sh / h
		row := dst[(y0+y)*dstStride+x0:][:w]
		srow := src[sy*srcStride:]
		for x := range row {
			row[x] = srow[x*sw/w]
		}
	}
}

// redact is err with the stream keys of the RTMP outputs (the last
// element of their paths) left out: ffmpeg names the URL it failed to
// reach, and errors are logged and shown.
func (e *Engine) redact(err error) error {
	msg := err.Error()
	changed := false
	for _, o := range e.cfg.Outputs {
		i := strings.LastIndex(o.RTMP, "/")
		if o.RTMP == "" || i < len("rtmps://") || !strings.Contains(msg, o.RTMP) {
			continue
		}
		msg = strings.ReplaceAll(msg, o.RTMP, o.RTMP[:i+1]+"<stream key>")
		changed = true
	}
	if !changed {
		return err
	}
	return errors.New(msg)
}
