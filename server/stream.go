package server

import (
	"errors"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// errAborted is returned by a stream's writes after kill.
var errAborted = errors.New("stream aborted")

// stream is the io.Writer an export writes its file to. It sends bytes on
// to the response, flushes it at least every flushBytes, and renews a
// rolling write deadline as bytes leave, so that a client that stops
// reading fails the stream without bounding the whole response.
//
// The XLSX writer writes from a goroutine of its own while the export's
// goroutine flushes, so every use of the response is under mu.
type stream struct {
	w            http.ResponseWriter
	rc           *http.ResponseController
	flushBytes   int
	writeTimeout time.Duration

	mu         sync.Mutex
	dead       atomic.Bool
	sent       atomic.Bool // the response has started (headers sent)
	pending    int         // bytes written since the last flush
	deadlineAt time.Time   // when the deadline was last renewed
}

func (s *stream) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead.Load() {
		return 0, errAborted
	}
	s.renew()
	s.sent.Store(true)
	n, err := s.w.Write(p)
	s.pending += n
	if err == nil && s.pending >= s.flushBytes {
		err = s.flushLocked()
	}
	return n, err
}

// Flush sends every byte written so far to the client.
func (s *stream) Flush() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.dead.Load() {
		return errAborted
	}
	s.renew()
	s.sent.Store(true)
	return s.flushLocked()
}

func (s *stream) flushLocked() error {
	s.pending = 0
	if err := s.rc.Flush(); err != nil && !errors.Is(err, http.ErrNotSupported) {
		return err
	}
	return nil
}

// renew moves the write deadline to writeTimeout from now, at most once a
// second.
func (s *stream) renew() {
	now := time.Now()
	if now.Sub(s.deadlineAt) < time.Second {
		return
	}
	s.deadlineAt = now
	s.rc.SetWriteDeadline(now.Add(s.writeTimeout))
}

// started reports whether the response has started.
func (s *stream) started() bool { return s.sent.Load() }

// kill makes every later write fail and waits for a write in progress: a
// write blocked on a slow client is cut short by a deadline in the past.
// After kill, nothing more of the file reaches the client.
func (s *stream) kill() {
	s.dead.Store(true)
	s.rc.SetWriteDeadline(time.Now().Add(-time.Second))
	s.mu.Lock()
	defer s.mu.Unlock()
}

// clearDeadline removes the rolling deadline once the handler is done, so
// that it cannot fire on the next response of a kept-alive connection.
func (s *stream) clearDeadline() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.dead.Load() {
		s.rc.SetWriteDeadline(time.Time{})
	}
}
