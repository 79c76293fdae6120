package exportd

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"
)

// Progress is a snapshot of a running export.
type Progress struct {
	Rows    int64         // rows written so far
	Bytes   int64         // bytes written to the output so far
	Elapsed time.Duration // time since the export started
	Total   int64         // estimated total rows; -1 when unknown
}

// Stats describes a finished (or failed) export.
type Stats struct {
	Rows      int64
	Bytes     int64
	Duration  time.Duration
	FirstByte time.Duration // time from start to the first byte written; 0 if none
}

// ErrRowLimit is returned (wrapped) when a query yields more rows than
// Export.MaxRows allows.
var ErrRowLimit = errors.New("row limit exceeded")

// Export connects one Source to one RowWriter. It is the single code path
// used by the HTTP stream, the job worker and the CLI.
//
// Rows are read by a goroutine of the export's own and handed to the writer
// in batches, so that reading from the database and formatting the file
// overlap, and so that the writer can be flushed (a keep-alive) while the
// database is silent. Run returns only after that goroutine has exited.
type Export struct {
	Source Source
	Query  Query
	// Columns are the declared output columns. When empty, the result's
	// columns are used (an ad-hoc query) and the writer starts only after
	// the query has returned its columns.
	Columns []Column
	// NewWriter makes the format writer on out. It is called before the
	// query starts when Columns are declared, so a header leaves at once.
	NewWriter func(out io.Writer, cols []Column) (RowWriter, error)
	// Output receives the file's bytes.
	Output io.Writer

	// MaxRows, when positive, fails the export with ErrRowLimit as soon as
	// row MaxRows+1 arrives.
	MaxRows int64
	// KeepAlive, when positive, flushes the writer each time no row has
	// arrived for this long (an empty deflate block for XLSX), through its
	// KeepAlive method when it is a [KeepAliver].
	KeepAlive time.Duration
	// FlushInterval, when positive, flushes the writer at least this often
	// while rows flow.
	FlushInterval time.Duration
	// OnProgress, if set, is called from Run's goroutine at most every
	// ProgressInterval (default 250 ms) and once at the end.
	OnProgress       func(Progress)
	ProgressInterval time.Duration
	// Estimate asks the source for an estimated row count (if it is an
	// Estimator) before the query starts; it fills Progress.Total.
	Estimate bool
	// OnFlush, if set, is called after each flush of the writer (the HTTP
	// server flushes its response there). A keep-alive flush passes true.
	OnFlush func(keepAlive bool) error
	// Admit, if set, is called once the writer has started (and flushed
	// its first bytes) and before the query starts (before Estimate too):
	// it waits for room to run the export, such as a slot of a server's
	// queue, and returns a release that Run calls when the export ends.
	// Keep-alive flushes go on while it waits; it must return when ctx
	// ends. An error from Admit ends the export.
	Admit func(ctx context.Context) (release func(), err error)
	// Turn, if set, is called before each batch of rows is written, with
	// the rows written so far, and the function it returns after the
	// batch: it lets a caller share the cores between the exports it runs
	// (a server gives the next turn to the export that has written the
	// fewest rows, so that a small download beside large ones is not held
	// back by them). An error from Turn ends the export.
	Turn func(ctx context.Context, rows int64) (done func(), err error)
}

const batchRows = 256

type batch struct {
	rows  [][]Value
	n     int
	arena []byte // the bytes of the batch's strings (see read)
}

// Run performs the export. On error the output is left unfinished (the
// writer is aborted, not closed), so that a caller can abort rather than
// deliver a complete-looking truncated file.
func (e *Export) Run(ctx context.Context) (Stats, error) {
	start := time.Now()
	out := &countingWriter{w: e.Output, start: start}
	var st Stats
	var w RowWriter
	finish := func(err error) (Stats, error) {
		if err != nil && w != nil {
			w.Abort()
		}
		st.Bytes, st.Duration, st.FirstByte = out.bytes(), time.Since(start), out.firstByte()
		return st, err
	}

	var err error
	if len(e.Columns) > 0 {
		if w, err = e.NewWriter(out, e.Columns); err != nil {
			return finish(fmt.Errorf("start writer: %w", err))
		}
		if err := e.flush(w, false); err != nil {
			return finish(err)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The reader goroutine runs the query and reads its rows; it is owned
	// by Run, which waits for it before returning. It starts the query too,
	// because a database may keep Query itself waiting until the first row
	// (MySQL, SQLite): the keep-alive must cover that wait as well.
	// It waits for admission first (Admit), while this goroutine goes on
	// flushing keep-alives, and asks for the estimate once admitted, so
	// that an export waiting for room costs no query.
	r := &reader{
		types:    declaredTypes(e.Columns),
		admit:    e.Admit,
		estimate: e.Estimate,
		started:  make(chan []ResultColumn, 1),
		full:     make(chan *batch, 2),
		free:     make(chan *batch, 3),
		total:    -1,
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		r.run(ctx, e.Source, e.Query)
	}()
	defer func() {
		// The slot is held until the export ends, writing included.
		if wg.Wait(); r.release != nil {
			r.release()
		}
	}()
	defer cancel() // runs before wg.Wait: stops the reader on an early return
	total := int64(-1)

	progressEvery := e.ProgressInterval
	if progressEvery <= 0 {
		progressEvery = 250 * time.Millisecond
	}
	lastProgress := start
	report := func(force bool) {
		if e.OnProgress == nil {
			return
		}
		now := time.Now()
		if !force && now.Sub(lastProgress) < progressEvery {
			return
		}
		lastProgress = now
		e.OnProgress(Progress{Rows: st.Rows, Bytes: out.bytes(), Elapsed: now.Sub(start), Total: total})
	}
	var keepAlive <-chan time.Time
	var timer *time.Timer
	if e.KeepAlive > 0 {
		timer = time.NewTimer(e.KeepAlive)
		defer timer.Stop()
		keepAlive = timer.C
	}
	// The flush tick sends rows written since the last flush, so that no
	// written row waits longer than FlushInterval for the client, however
	// slowly the next ones come.
	// It starts with the query: an export waiting for room (Admit) wakes
	// for its keep-alives only.
	var flushTick <-chan time.Time
	var flushTicker *time.Ticker
	defer func() {
		if flushTicker != nil {
			flushTicker.Stop()
		}
	}()
	unflushed := false // rows written since the last flush
	started := r.started
	var full <-chan *batch // nil until the query has started

	for {
		select {
		case <-ctx.Done():
			return finish(fmt.Errorf("export: %w", context.Cause(ctx)))
		case <-keepAlive:
			if w != nil {
				if err := e.flush(w, true); err != nil {
					return finish(err)
				}
				unflushed = false
			}
			timer.Reset(e.KeepAlive)
		case <-flushTick:
			if unflushed {
				if err := e.flush(w, false); err != nil {
					return finish(err)
				}
				unflushed = false
			}
		case cols, ok := <-started:
			started = nil
			if !ok {
				if r.admitErr != nil {
					return finish(fmt.Errorf("wait for room: %w", r.admitErr))
				}
				return finish(fmt.Errorf("query: %w", r.err))
			}
			total = r.total
			if len(e.Columns) > 0 && len(e.Columns) != len(cols) {
				return finish(fmt.Errorf("query returns %d columns, %d declared", len(cols), len(e.Columns)))
			}
			if w == nil {
				decl := make([]Column, len(cols))
				for i, c := range cols {
					decl[i] = Column{Name: c.Name, Type: c.Type}
				}
				if w, err = e.NewWriter(out, decl); err != nil {
					return finish(fmt.Errorf("start writer: %w", err))
				}
			}
			full = r.full
			if e.FlushInterval > 0 {
				flushTicker = time.NewTicker(e.FlushInterval)
				flushTick = flushTicker.C
			}
		case b, ok := <-full:
			if !ok {
				if r.err != nil {
					return finish(fmt.Errorf("read rows: %w", r.err))
				}
				if err := ctx.Err(); err != nil {
					return finish(fmt.Errorf("export: %w", context.Cause(ctx)))
				}
				if err := w.Close(); err != nil {
					return finish(fmt.Errorf("finish file: %w", err))
				}
				if e.OnFlush != nil {
					if err := e.OnFlush(false); err != nil {
						return finish(err)
					}
				}
				report(true)
				return finish(nil)
			}
			if timer != nil {
				timer.Reset(e.KeepAlive)
			}
			var turnDone func()
			if e.Turn != nil {
				if turnDone, err = e.Turn(ctx, st.Rows); err != nil {
					return finish(fmt.Errorf("wait for a turn: %w", err))
				}
			}
			err := e.writeBatch(w, b, &st)
			if turnDone != nil {
				turnDone()
			}
			if err != nil {
				return finish(err)
			}
			r.free <- b
			unflushed = true
			report(false)
		}
	}
}

// writeBatch writes the rows of b.
func (e *Export) writeBatch(w RowWriter, b *batch, st *Stats) error {
	for _, row := range b.rows[:b.n] {
		if e.MaxRows > 0 && st.Rows >= e.MaxRows {
			return fmt.Errorf("more than %d rows: %w", e.MaxRows, ErrRowLimit)
		}
		if err := w.WriteRow(row); err != nil {
			return fmt.Errorf("write row %d: %w", st.Rows+1, err)
		}
		st.Rows++
	}
	return nil
}

// reader runs a query and reads its rows in batches on a goroutine of its
// own. It sends the result's columns on started (or closes started with err
// set when the query fails), then full batches on full, which it closes at
// the end with err set to the error that ended the rows, if any. Batches
// come back on free to be reused.
type reader struct {
	types    []Type
	admit    func(context.Context) (func(), error) // nil: run at once
	estimate bool
	started  chan []ResultColumn
	full     chan *batch
	free     chan *batch
	err      error  // read only after started or full is closed
	admitErr error  // from admit; read only after started is closed
	total    int64  // the estimate; read only after started
	release  func() // from admit; read only after run has returned
}

func (r *reader) run(ctx context.Context, src Source, q Query) {
	if r.admit != nil {
		release, err := r.admit(ctx)
		if err != nil {
			r.admitErr = err
			close(r.started)
			return
		}
		r.release = release
		if ctx.Err() != nil {
			// Admitted as the export ended: no query starts.
			r.admitErr = context.Cause(ctx)
			close(r.started)
			return
		}
	}
	if r.estimate {
		if est, ok := src.(Estimator); ok {
			if n, ok := est.EstimateRows(ctx, q); ok {
				r.total = n
			}
		}
	}
	rows, err := src.Query(ctx, q)
	if err != nil {
		r.err = err
		close(r.started)
		return
	}
	defer rows.Close()
	cols := rows.Columns()
	for range cap(r.free) {
		b := &batch{rows: make([][]Value, batchRows)}
		for i := range b.rows {
			b.rows[i] = make([]Value, len(cols))
		}
		r.free <- b
	}
	r.started <- cols
	read(ctx, rows, r.types, r.free, r.full)
	r.err = rows.Err()
	close(r.full)
}

// read fills batches from rows and sends them on full.
//
// A row must not wait in a half-full batch while the database is slow to
// send the next one: read cannot know whether Next will block, so it
// starts in trickle mode, where each row is sent on its own, and turns to
// full batches only once rows are seen to arrive fast (fastRun rows within
// fastRun×fastGap). A batch still goes out when 100 ms have passed since
// its first row (checked every 32 rows), and then read falls back to
// trickle mode: rows that slow no longer fill batches. In batch mode a
// stall in the middle of a fast stream holds back at most one batch, and
// the export's keep-alive covers the silence.
//
// Values are converted to the declared column types (see [Value.As]) here,
// in the reader goroutine, where the work overlaps with the writer's.
func read(ctx context.Context, rows Rows, types []Type, free <-chan *batch, full chan<- *batch) {
	const (
		fastRun = 64                    // rows that must arrive fast in a row
		fastGap = 50 * time.Microsecond // the mean gap they must keep under
	)
	trickle := true
	var runStart time.Time // trickle mode: when the current run of fast rows began
	runRows := 0
	for {
		var b *batch
		select {
		case b = <-free:
		case <-ctx.Done():
			return
		}
		b.n = 0
		b.arena = b.arena[:0]
		var first time.Time
		for b.n < len(b.rows) {
			r := b.rows[b.n]
			if !rows.Next(r) {
				break
			}
			for i, t := range types {
				if t != "" && r[i].Kind != KindNull {
					r[i] = r[i].As(t)
				}
			}
			b.keepStrings(r)
			b.n++
			if trickle {
				now := time.Now()
				if runRows == 0 || now.Sub(runStart) > fastRun*fastGap {
					runStart, runRows = now, 0
				}
				if runRows++; runRows < fastRun {
					break // send this row now
				}
				trickle = false
				first = now
				continue
			}
			if b.n == 1 {
				first = time.Now()
			}
			if b.n%32 == 0 && time.Since(first) > 100*time.Millisecond {
				trickle, runRows = true, 0
				break
			}
		}
		if b.n == 0 {
			return
		}
		select {
		case full <- b:
		case <-ctx.Done():
			return
		}
		if b.n < len(b.rows) && rows.Err() != nil {
			return
		}
	}
}

// keepStrings copies the strings of row into the batch's arena. A source's
// strings are valid only until its next Next (pgx and the MySQL driver
// hand out views of their read buffers), but a batch is written after
// more rows have been read; the arena keeps them, without an allocation per
// string. The arena is reused once the writer has returned the batch, and
// writers do not keep strings past WriteRow ([RowWriter]).
func (b *batch) keepStrings(row []Value) {
	for i := range row {
		v := &row[i]
		if (v.Kind != KindString && v.Kind != KindDecimal) || v.S == "" {
			continue
		}
		if cap(b.arena)-len(b.arena) < len(v.S) {
			// A new block: strings already made point into the old one,
			// which stays alive and unchanged while they are used.
			b.arena = make([]byte, 0, max(64<<10, 2*cap(b.arena), len(v.S)))
		}
		start := len(b.arena)
		b.arena = append(b.arena, v.S...)
		v.S = unsafe.String(&b.arena[start], len(v.S))
	}
}

// declaredTypes returns the declared type of each column, or nil when no
// column declares one.
func declaredTypes(cols []Column) []Type {
	var types []Type
	for i, c := range cols {
		if c.Type != "" {
			if types == nil {
				types = make([]Type, len(cols))
			}
			types[i] = c.Type
		}
	}
	return types
}

func (e *Export) flush(w RowWriter, keepAlive bool) error {
	flush := w.Flush
	if keepAlive {
		if ka := keepAliver(w); ka != nil {
			flush = ka.KeepAlive
		}
	}
	if err := flush(); err != nil {
		return fmt.Errorf("flush: %w", err)
	}
	if e.OnFlush != nil {
		if err := e.OnFlush(keepAlive); err != nil {
			return fmt.Errorf("flush: %w", err)
		}
	}
	return nil
}

// keepAliver returns the KeepAliver w is or wraps, or nil.
func keepAliver(w RowWriter) KeepAliver {
	for w != nil {
		if ka, ok := w.(KeepAliver); ok {
			return ka
		}
		u, ok := w.(interface{ Unwrap() RowWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
	return nil
}

// countingWriter counts bytes and notes when the first one was written.
// A writer may write from a goroutine of its own, so the counts are atomic.
type countingWriter struct {
	w     io.Writer
	n     atomic.Int64
	start time.Time
	first atomic.Int64 // nanoseconds from start to the first byte
}

func (c *countingWriter) Write(p []byte) (int, error) {
	if len(p) > 0 && c.first.Load() == 0 {
		c.first.CompareAndSwap(0, int64(max(time.Since(c.start), 1)))
	}
	n, err := c.w.Write(p)
	c.n.Add(int64(n))
	return n, err
}

func (c *countingWriter) bytes() int64             { return c.n.Load() }
func (c *countingWriter) firstByte() time.Duration { return time.Duration(c.first.Load()) }
