package xlsx

import (
	"sync"
	"sync/atomic"
)

// The pipe runs the ZIP writer (CRC, deflate, output) in a second goroutine
// while the caller formats XML, so the two halves of the work use two cores.
// It holds a fixed number of buffers: memory does not grow with rows, and a
// slow destination slows the caller down (back-pressure) instead of queueing.

type opKind uint8

const (
	opBegin opKind = iota
	opData
	opEnd
	opFlush
	opClose
)

type op struct {
	kind opKind
	name string
	buf  []byte
}

const (
	bufSize  = 64 << 10 // one formatting buffer
	pipeBufs = 4        // buffers in circulation
)

type pipe struct {
	ops  chan op
	free chan []byte
	done chan error // reply to opFlush and opClose
	once sync.Once

	aborted atomic.Bool   // set by abort: the remaining ops are dropped
	exited  chan struct{} // closed when run returns

	mu  sync.Mutex
	err error
}

func newPipe(z *zipWriter) (*pipe, []byte) {
	p := &pipe{
		ops:    make(chan op, pipeBufs),
		free:   make(chan []byte, pipeBufs),
		done:   make(chan error, 1),
		exited: make(chan struct{}),
	}
	for range pipeBufs - 1 {
		p.free <- make([]byte, 0, bufSize+bufSize/4)
	}
	go p.run(z)
	return p, make([]byte, 0, bufSize+bufSize/4)
}

func (p *pipe) run(z *zipWriter) {
	defer close(p.exited)
	for o := range p.ops {
		if p.aborted.Load() {
			continue // nothing more reaches the destination
		}
		var err error
		switch o.kind {
		case opBegin:
			err = z.begin(o.name)
		case opData:
			err = z.write(o.buf)
			p.free <- o.buf[:0]
		case opEnd:
			err = z.end()
		case opFlush:
			err = z.flush()
			p.done <- err
		case opClose:
			err = z.close()
			p.done <- err
			return
		}
		if err != nil {
			p.mu.Lock()
			if p.err == nil {
				p.err = err
			}
			p.mu.Unlock()
		}
	}
}

// failed returns the first error the ZIP goroutine met, if any.
func (p *pipe) failed() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.err
}

// stop ends the goroutine of a Writer that was dropped without Close.
func (p *pipe) stop() { p.once.Do(func() { close(p.ops) }) }

// abort drops the queued ops and waits until the goroutine has returned,
// so that it writes nothing to the destination after abort. A write in
// progress is waited for (a destination with a write deadline bounds it).
func (p *pipe) abort() {
	p.aborted.Store(true)
	p.stop()
	<-p.exited
}
