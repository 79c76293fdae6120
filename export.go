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
	// Sheets are the rows of each sheet of an export of several
	// (Export.Sheets), those begun; nil otherwise.
	Sheets []SheetStats
}

// SheetStats are the rows written into one sheet of an export.
type SheetStats struct {
	Name string `json:"name"`
	Rows int64  `json:"rows"`
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
//
// An export of several sheets (Sheets) runs their queries one after the
// other into the same output, with the same keep-alives, flushes and
// limits: each sheet's writer is made (and flushed) before its query
// starts, so that the wait for each later query is covered too.
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
	// Sheets, when not empty, replace Source, Query, Columns and
	// NewWriter: the export runs each in turn. Each must declare its
	// columns. The writer of a sheet ends that sheet on Close, and the
	// writer of the last sheet ends the file (see format.Book).
	Sheets []ExportSheet
	// Output receives the file's bytes.
	Output io.Writer

	// MaxRows, when positive, fails the export with ErrRowLimit as soon as
	// row MaxRows+1 arrives (counted over every sheet).
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
	// Estimator) before the query starts; it fills Progress.Total. An
	// export of several sheets asks for each sheet's as it starts, and
	// Total is the rows of the sheets done plus the current one's.
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

// ExportSheet is one sheet of an export of several: its query, its
// declared columns and the maker of its writer.
type ExportSheet struct {
	Name      string // for Stats.Sheets
	Source    Source // nil: Export.Source
	Query     Query
	Columns   []Column
	NewWriter func(out io.Writer, cols []Column) (RowWriter, error)
}

const batchRows = 256

type batch struct {
	rows  [][]Value
	n     int
	arena []byte // the bytes of the batch's strings (see read)
}

// run is the state of one Run, shared by its sheets.
type run struct {
	e         *Export
	out       *countingWriter
	start     time.Time
	st        Stats
	w         RowWriter
	release   func() // from Admit
	total     int64
	done      int64 // rows of the sheets done, for the estimate of an export of several
	timer     *time.Timer
	keepAlive <-chan time.Time
	flushTick <-chan time.Time
	// flushTicker makes flushTick, from the first query on.
	flushTicker *time.Ticker
	last        time.Time // of the last progress report
	unflushed   bool      // rows written since the last flush
}

// Run performs the export. On error the output is left unfinished (the
// writer is aborted, not closed), so that a caller can abort rather than
// deliver a complete-looking truncated file.
func (e *Export) Run(ctx context.Context) (Stats, error) {
	start := time.Now()
	r := &run{e: e, start: start, last: start, total: -1, out: &countingWriter{w: e.Output, start: start}}
	finish := func(err error) (Stats, error) {
		if err != nil && r.w != nil {
			r.w.Abort()
		}
		r.st.Bytes, r.st.Duration, r.st.FirstByte = r.out.bytes(), time.Since(start), r.out.firstByte()
		return r.st, err
	}
	// The admission's slot is held until the export ends, writing
	// included; each sheet's reader has exited before this runs.
	defer func() {
		if r.release != nil {
			r.release()
		}
	}()

	sheets := e.Sheets
	if len(sheets) == 0 {
		sheets = []ExportSheet{{Source: e.Source, Query: e.Query, Columns: e.Columns, NewWriter: e.NewWriter}}
	} else {
		r.st.Sheets = make([]SheetStats, 0, len(sheets))
		for i, sh := range sheets {
			if len(sh.Columns) == 0 {
				return finish(fmt.Errorf("sheet %d (%s): no declared columns", i+1, sh.Name))
			}
		}
	}

	if e.KeepAlive > 0 {
		r.timer = time.NewTimer(e.KeepAlive)
		defer r.timer.Stop()
		r.keepAlive = r.timer.C
	}
	// The flush tick sends rows written since the last flush, so that no
	// written row waits longer than FlushInterval for the client, however
	// slowly the next ones come (started with the first query: see sheet).
	defer func() {
		if r.flushTicker != nil {
			r.flushTicker.Stop()
		}
	}()
	for i := range sheets {
		if err := r.sheet(ctx, i, &sheets[i], i == len(sheets)-1); err != nil {
			return finish(err)
		}
	}
	return finish(nil)
}

// sheet runs the query of one sheet into its writer, which it makes
// first when the sheet declares its columns. The writer of the last
// sheet is closed at the end (the file ends); that of another is closed
// too (its sheet ends) and stays r.w until the next one is made.
func (r *run) sheet(ctx context.Context, i int, sh *ExportSheet, last bool) error {
	e := r.e
	var err error
	src := sh.Source
	if src == nil {
		src = e.Source
	}
	if r.st.Sheets != nil {
		r.st.Sheets = append(r.st.Sheets, SheetStats{Name: sh.Name})
	}
	if len(sh.Columns) > 0 {
		if r.w, err = sh.NewWriter(r.out, sh.Columns); err != nil {
			return fmt.Errorf("start writer: %w", err)
		}
		if err := r.flush(false); err != nil {
			return err
		}
		if r.timer != nil {
			r.timer.Reset(e.KeepAlive)
		}
	}

	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	// The reader goroutine runs the query and reads its rows; it is owned
	// by this call, which waits for it before returning. It starts the
	// query too, because a database may keep Query itself waiting until
	// the first row (MySQL, SQLite): the keep-alive must cover that wait
	// as well. It waits for admission first (Admit, on the first sheet),
	// while this goroutine goes on flushing keep-alives, and asks for the
	// estimate once admitted, so that an export waiting for room costs no
	// query.
	rd := &reader{
		types:    declaredTypes(sh.Columns),
		estimate: e.Estimate,
		started:  make(chan []ResultColumn, 1),
		full:     make(chan *batch, 2),
		free:     make(chan *batch, 3),
		total:    -1,
	}
	if i == 0 {
		rd.admit = e.Admit
	}
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		rd.run(ctx, src, sh.Query)
	}()
	defer func() {
		wg.Wait()
		if rd.release != nil {
			r.release = rd.release
		}
	}()
	defer cancel() // runs before wg.Wait: stops the reader on an early return

	started := rd.started
	var full <-chan *batch // nil until the query has started
	var sheetRows *int64
	if r.st.Sheets != nil {
		sheetRows = &r.st.Sheets[len(r.st.Sheets)-1].Rows
	}
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("export: %w", context.Cause(ctx))
		case <-r.keepAlive:
			if r.w != nil {
				if err := r.flush(true); err != nil {
					return err
				}
				r.unflushed = false
			}
			r.timer.Reset(e.KeepAlive)
		case <-r.flushTick:
			if r.unflushed {
				if err := r.flush(false); err != nil {
					return err
				}
				r.unflushed = false
			}
		case cols, ok := <-started:
			started = nil
			if !ok {
				if rd.admitErr != nil {
					return fmt.Errorf("wait for room: %w", rd.admitErr)
				}
				return fmt.Errorf("query: %w", rd.err)
			}
			if rd.total >= 0 {
				r.total = r.done + rd.total
			}
			if len(sh.Columns) > 0 && len(sh.Columns) != len(cols) {
				return fmt.Errorf("query returns %d columns, %d declared", len(cols), len(sh.Columns))
			}
			if len(sh.Columns) == 0 {
				decl := make([]Column, len(cols))
				for i, c := range cols {
					decl[i] = Column{Name: c.Name, Type: c.Type}
				}
				if r.w, err = sh.NewWriter(r.out, decl); err != nil {
					return fmt.Errorf("start writer: %w", err)
				}
			}
			full = rd.full
			if e.FlushInterval > 0 && r.flushTicker == nil {
				// The flush ticker starts with the first query: an export
				// waiting for room (Admit) wakes for its keep-alives only.
				r.flushTicker = time.NewTicker(e.FlushInterval)
				r.flushTick = r.flushTicker.C
			}
		case b, ok := <-full:
			if !ok {
				if rd.err != nil {
					return fmt.Errorf("read rows: %w", rd.err)
				}
				if err := ctx.Err(); err != nil {
					return fmt.Errorf("export: %w", context.Cause(ctx))
				}
				r.done = r.st.Rows
				if !last {
					if err := r.w.Close(); err != nil {
						return fmt.Errorf("finish sheet %s: %w", sh.Name, err)
					}
					return nil
				}
				if err := r.w.Close(); err != nil {
					return fmt.Errorf("finish file: %w", err)
				}
				if e.OnFlush != nil {
					if err := e.OnFlush(false); err != nil {
						return err
					}
				}
				r.report(true)
				return nil
			}
			if r.timer != nil {
				r.timer.Reset(e.KeepAlive)
			}
			var turnDone func()
			if e.Turn != nil {
				if turnDone, err = e.Turn(ctx, r.st.Rows); err != nil {
					return fmt.Errorf("wait for a turn: %w", err)
				}
			}
			err := r.writeBatch(b, sheetRows)
			if turnDone != nil {
				turnDone()
			}
			if err != nil {
				return err
			}
			rd.free <- b
			r.unflushed = true
			r.report(false)
		}
	}
}

func (r *run) report(force bool) {
	e := r.e
	if e.OnProgress == nil {
		return
	}
	every := e.ProgressInterval
	if every <= 0 {
		every = 250 * time.Millisecond
	}
	now := time.Now()
	if !force && now.Sub(r.last) < every {
		return
	}
	r.last = now
	e.OnProgress(Progress{Rows: r.st.Rows, Bytes: r.out.bytes(), Elapsed: now.Sub(r.start), Total: r.total})
}

func (r *run) flush(keepAlive bool) error { return r.e.flush(r.w, keepAlive) }

// writeBatch writes the rows of b, counting them in sheetRows too when
// it is not nil.
func (r *run) writeBatch(b *batch, sheetRows *int64) error {
	e := r.e
	for _, row := range b.rows[:b.n] {
		if e.MaxRows > 0 && r.st.Rows >= e.MaxRows {
			return fmt.Errorf("more than %d rows: %w", e.MaxRows, ErrRowLimit)
		}
		if err := r.w.WriteRow(row); err != nil {
			return fmt.Errorf("write row %d: %w", r.st.Rows+1, err)
		}
		r.st.Rows++
		if sheetRows != nil {
			*sheetRows++
		}
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
