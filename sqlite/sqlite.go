package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/exportd/exportd/internal/sqlparam"

	"github.com/exportd/exportd"
	"modernc.org/libc"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
	sqlite3 "modernc.org/sqlite/lib"
)

var (
	_ exportd.Source = (*Source)(nil)
	_ exportd.Rows   = (*Rows)(nil)
)

// Source runs queries on one SQLite database file.
type Source struct {
	db  *sql.DB // Ping and Describe, through the database/sql driver
	cfg dsnConfig
	loc *time.Location

	mu     sync.Mutex
	idle   []*conn // connections for Query, see conn
	closed bool
}

// maxIdle is how many Query connections are kept open between queries.
const maxIdle = 2

// Open opens the SQLite database dsn, a file path or a "file:" URI, for
// queries only: the connection sets PRAGMA query_only, so a dataset's SQL
// cannot change the file. A missing file is an error (nothing is created);
// ":memory:" and "mode=memory" URIs are allowed.
func Open(ctx context.Context, dsn string, opts exportd.SourceOptions) (*Source, error) {
	path, query, _ := strings.Cut(dsn, "?")
	file := strings.TrimPrefix(path, "file:")
	if file != ":memory:" && !strings.Contains(query, "mode=memory") {
		if _, err := os.Stat(file); err != nil {
			return nil, fmt.Errorf("sqlite open: %w", err)
		}
	}
	sep := "?"
	if query != "" {
		sep = "&"
	}
	dsn += sep + "_pragma=busy_timeout(10000)&_pragma=query_only(1)"
	cfg, err := parseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite open: %w", err)
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("sqlite open: %w", err)
	}
	s := &Source{db: db, cfg: cfg, loc: opts.Loc()}
	if err := s.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	c, err := openConn(cfg)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite open: %w", err)
	}
	s.idle = append(s.idle, c)
	return s, nil
}

// conn takes an idle Query connection or opens one.
func (s *Source) conn() (*conn, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, errors.New("source closed")
	}
	if n := len(s.idle); n > 0 {
		c := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		return c, nil
	}
	s.mu.Unlock()
	return openConn(s.cfg)
}

// release keeps c for the next Query, or closes it when it must not be
// reused (interrupted) or enough are kept.
func (s *Source) release(c *conn, reuse bool) {
	s.mu.Lock()
	if reuse && !s.closed && len(s.idle) < maxIdle {
		s.idle = append(s.idle, c)
		c = nil
	}
	s.mu.Unlock()
	if c != nil {
		c.close()
	}
}

// Ping checks that the database file can be read.
func (s *Source) Ping(ctx context.Context) error {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		return fmt.Errorf("sqlite ping: %w", err)
	}
	return nil
}

// Close closes every connection; the connections of rows still open are
// closed when the rows are.
func (s *Source) Close() error {
	s.mu.Lock()
	idle := s.idle
	s.idle, s.closed = nil, true
	s.mu.Unlock()
	for _, c := range idle {
		c.close()
	}
	return s.db.Close()
}

// bind rewrites q's named parameters. A DateArg binds as 'YYYY-MM-DD' and
// a time.Time as 'YYYY-MM-DD HH:MM:SS[.fff]' in the source's location, the
// text SQLite's date functions write, so that comparisons with stored text
// work. A nil params map binds NULL for every parameter (for Describe).
func (s *Source) bind(q exportd.Query, nulls bool) (string, []any, error) {
	return sqlparam.BindText(q, sqlparam.SQLite, s.loc, "2006-01-02 15:04:05.999999999", nulls)
}

// Describe returns the result columns of q without running it: q runs
// wrapped as SELECT * FROM (q) LIMIT 0, with NULL for absent parameters.
func (s *Source) Describe(ctx context.Context, q exportd.Query) ([]exportd.ResultColumn, error) {
	text, args, err := s.bind(q, true)
	if err != nil {
		return nil, fmt.Errorf("sqlite describe: %w", err)
	}
	text = strings.TrimRight(strings.TrimSpace(text), ";")
	rows, err := s.db.QueryContext(ctx, "SELECT * FROM (\n"+text+"\n) LIMIT 0", args...)
	if err != nil {
		return nil, fmt.Errorf("sqlite describe: %w", err)
	}
	defer rows.Close()
	cols, _, err := columns(rows)
	if err != nil {
		return nil, fmt.Errorf("sqlite describe: %w", err)
	}
	return cols, nil
}

// Query runs q. Rows are stepped one at a time as the caller reads them,
// on a connection of the query's own. A positive q.Timeout bounds the whole
// statement (SQLite has no server side timeout: the statement is
// interrupted when its context expires).
func (s *Source) Query(ctx context.Context, q exportd.Query) (exportd.Rows, error) {
	text, args, err := s.bind(q, false)
	if err != nil {
		return nil, fmt.Errorf("sqlite query: %w", err)
	}
	cancel := context.CancelFunc(func() {})
	if q.Timeout > 0 {
		ctx, cancel = context.WithTimeoutCause(ctx, q.Timeout, exportd.ErrQueryTimeout)
	}
	c, err := s.conn()
	if err != nil {
		cancel()
		return nil, fmt.Errorf("sqlite query: %w", err)
	}
	stmt, err := c.prepare(text)
	if err == nil {
		if err = c.bind(stmt, args); err != nil {
			sqlite3.Xsqlite3_finalize(c.tls, stmt)
		}
	}
	if err != nil {
		s.release(c, true)
		cancel()
		return nil, wrap(ctx, "sqlite query", err)
	}
	r := &Rows{src: s, c: c, stmt: stmt, ctx: ctx, cancel: cancel, loc: s.loc, interrupted: make(chan struct{})}
	n := int(sqlite3.Xsqlite3_column_count(c.tls, stmt))
	r.cols = make([]exportd.ResultColumn, n)
	r.hints = make([]hint, n)
	r.driverTime = make([]bool, n)
	for i := range n {
		decl := strings.ToUpper(libc.GoString(sqlite3.Xsqlite3_column_decltype(c.tls, stmt, int32(i))))
		name := libc.GoString(sqlite3.Xsqlite3_column_name(c.tls, stmt, int32(i)))
		r.hints[i] = hintFor(decl)
		// The database/sql driver parses the text of exactly these
		// declared types itself (driverTime); the values stay the same.
		r.driverTime[i] = decl == "DATE" || decl == "DATETIME" || decl == "TIMESTAMP"
		if decl == "" {
			decl = "ANY" // an expression: no declared type
		}
		r.cols[i] = exportd.ResultColumn{Name: name, DatabaseType: decl, Type: hintTypes[r.hints[i]]}
	}
	r.stopInterrupt = context.AfterFunc(ctx, r.interrupt)
	return r, nil
}

// wrap adds op to err and, when ctx ended, the reason: a Query.Timeout
// becomes exportd.ErrQueryTimeout, a cancel context.Canceled.
func wrap(ctx context.Context, op string, err error) error {
	if ctx.Err() == nil {
		return fmt.Errorf("%s: %w", op, err)
	}
	reason := context.Cause(ctx)
	if errors.Is(reason, exportd.ErrQueryTimeout) {
		reason = exportd.ErrQueryTimeout
	} else {
		reason = ctx.Err()
	}
	if errors.Is(err, reason) {
		return fmt.Errorf("%s: %w", op, err)
	}
	return fmt.Errorf("%s: %w (%w)", op, reason, err)
}

// hint is how a column's declared type guides conversion.
type hint uint8

const (
	hintNone hint = iota
	hintInt
	hintFloat
	hintText
	hintBool
	hintDate
	hintDateTime
	hintDecimal
)

var hintTypes = [...]exportd.Type{
	hintNone: "", hintInt: exportd.TypeInt, hintFloat: exportd.TypeFloat, hintText: exportd.TypeString,
	hintBool: exportd.TypeBool, hintDate: exportd.TypeDate, hintDateTime: exportd.TypeDateTime, hintDecimal: exportd.TypeDecimal,
}

// hintFor follows SQLite's affinity rules (section 3.1 of "Datatypes In
// SQLite"), after recognising the names of types SQLite has no storage for.
func hintFor(decl string) hint {
	d := strings.ToUpper(decl)
	switch {
	case d == "":
		return hintNone
	case d == "BOOL" || d == "BOOLEAN":
		return hintBool
	case d == "DATE":
		return hintDate
	case strings.HasPrefix(d, "DATETIME") || strings.HasPrefix(d, "TIMESTAMP"):
		return hintDateTime
	case strings.HasPrefix(d, "DECIMAL") || strings.HasPrefix(d, "NUMERIC"):
		return hintDecimal
	case strings.Contains(d, "INT"):
		return hintInt
	case strings.Contains(d, "CHAR") || strings.Contains(d, "CLOB") || strings.Contains(d, "TEXT"):
		return hintText
	case strings.Contains(d, "BLOB"):
		return hintNone
	case strings.Contains(d, "REAL") || strings.Contains(d, "FLOA") || strings.Contains(d, "DOUB"):
		return hintFloat
	}
	return hintNone // NUMERIC affinity: by the stored value
}

func columns(rows *sql.Rows) ([]exportd.ResultColumn, []hint, error) {
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, nil, err
	}
	cols := make([]exportd.ResultColumn, len(cts))
	hints := make([]hint, len(cts))
	for i, ct := range cts {
		h := hintFor(ct.DatabaseTypeName())
		hints[i] = h
		dbType := ct.DatabaseTypeName()
		if dbType == "" {
			dbType = "ANY" // an expression: no declared type
		}
		cols[i] = exportd.ResultColumn{Name: ct.Name(), DatabaseType: dbType, Type: hintTypes[h]}
	}
	return cols, hints, nil
}

// Rows is a result being stepped.
type Rows struct {
	src    *Source
	c      *conn
	stmt   uintptr
	ctx    context.Context
	cancel context.CancelFunc
	cols   []exportd.ResultColumn
	hints  []hint
	// driverTime marks the columns whose text the database/sql driver
	// turned into time.Time (see convertText).
	driverTime []bool
	loc        *time.Location
	text       []byte // the current row's text (see keep)
	err        error
	done       bool

	// A cancelled context interrupts the statement from another
	// goroutine (interrupt); stepping says whether Next is inside
	// sqlite3_step, where an interrupt can be lost (see interrupt).
	stopInterrupt func() bool
	interrupted   chan struct{} // closed when interrupt has returned
	stepping      atomic.Bool
}

// Columns returns the result's columns.
func (r *Rows) Columns() []exportd.ResultColumn { return r.cols }

// Next reads the next row into dst. Its strings stay valid until the next
// call to Next.
func (r *Rows) Next(dst []exportd.Value) bool {
	if r.done {
		return false
	}
	r.stepping.Store(true)
	if r.ctx.Err() != nil {
		r.stepping.Store(false)
		r.err = context.Cause(r.ctx)
		r.finish()
		return false
	}
	rc := sqlite3.Xsqlite3_step(r.c.tls, r.stmt)
	r.stepping.Store(false)
	switch rc {
	case sqlite3.SQLITE_ROW:
	case sqlite3.SQLITE_DONE:
		r.finish()
		return false
	default:
		r.err = r.c.error(rc)
		r.finish()
		return false
	}
	tls, stmt := r.c.tls, r.stmt
	r.text = r.text[:0]
	for i := range dst {
		col := int32(i)
		h := r.hints[i]
		switch sqlite3.Xsqlite3_column_type(tls, stmt, col) {
		case sqlite3.SQLITE_INTEGER:
			v := sqlite3.Xsqlite3_column_int64(tls, stmt, col)
			switch {
			case h == hintBool && (v == 0 || v == 1):
				dst[i] = exportd.Bool(v == 1)
			case h == hintFloat:
				dst[i] = exportd.Float(float64(v))
			default:
				dst[i] = exportd.Int(v)
			}
		case sqlite3.SQLITE_FLOAT:
			dst[i] = exportd.Float(sqlite3.Xsqlite3_column_double(tls, stmt, col))
		case sqlite3.SQLITE_TEXT:
			p := sqlite3.Xsqlite3_column_text(tls, stmt, col)
			s := r.keep(text(p, sqlite3.Xsqlite3_column_bytes(tls, stmt, col)))
			dst[i] = convertText(s, h, r.driverTime[i], r.loc)
		case sqlite3.SQLITE_BLOB:
			p := sqlite3.Xsqlite3_column_blob(tls, stmt, col)
			dst[i] = exportd.String(blobText(r.keep(text(p, sqlite3.Xsqlite3_column_bytes(tls, stmt, col)))))
		default:
			dst[i] = exportd.Null()
		}
	}
	return true
}

// keep copies s, a view of SQLite's memory, into the row's text buffer
// and returns the copy. SQLite frees its memory when the statement steps or
// is finalized, but a caller may still hold the last row's strings after
// Close; the buffer is Go memory, reused from row to row without an
// allocation once it has grown to the largest row.
func (r *Rows) keep(s string) string {
	if s == "" {
		return ""
	}
	if cap(r.text)-len(r.text) < len(s) {
		// Strings of this row already made point into the old buffer,
		// which stays as it is.
		r.text = make([]byte, 0, max(2*cap(r.text), len(s), 1024))
	}
	start := len(r.text)
	r.text = append(r.text, s...)
	return unsafe.String(&r.text[start], len(s))
}

// interrupt stops the statement when the query's context ends. SQLite
// clears a connection's interrupt when a statement starts to run, so an
// interrupt sent just before Next's first step would be lost: it is
// repeated while Next is inside sqlite3_step, and Next checks the context
// before each step.
func (r *Rows) interrupt() {
	defer close(r.interrupted)
	tls := libc.NewTLS()
	defer tls.Close()
	for {
		sqlite3.Xsqlite3_interrupt(tls, r.c.db)
		if !r.stepping.Load() {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Err returns the error that ended the rows.
func (r *Rows) Err() error {
	if r.err == nil {
		return nil
	}
	return wrap(r.ctx, "sqlite query", r.err)
}

// Close releases the statement and its connection; it is safe to call more
// than once.
func (r *Rows) Close() error {
	r.finish()
	return nil
}

func (r *Rows) finish() {
	if r.done {
		return
	}
	r.done = true
	sqlite3.Xsqlite3_finalize(r.c.tls, r.stmt)
	reuse := r.stopInterrupt()
	if !reuse {
		<-r.interrupted // it has stopped using the connection
	}
	r.src.release(r.c, reuse)
	r.cancel()
}

// convertText converts a TEXT value. For a column declared DATE, DATETIME
// or TIMESTAMP the database/sql driver first tried its own time formats
// (driverTime) and gave a time.Time when one matched: the same is done
// here, so that values do not change with the way they are read.
func convertText(s string, h hint, driverTime bool, loc *time.Location) exportd.Value {
	if driverTime {
		if t, ok := parseDriverTime(s); ok {
			return convertTime(t, h, loc)
		}
	}
	return convert(s, h, loc)
}

// convertTime converts a time parsed from a DATE, DATETIME or TIMESTAMP
// column's text. Text without a zone comes back in UTC: its wall clock is
// kept as stored; text with a zone is converted to loc.
func convertTime(t time.Time, h hint, loc *time.Location) exportd.Value {
	if h == hintDate {
		y, m, d := t.Date()
		return exportd.Date(time.Date(y, m, d, 0, 0, 0, 0, time.UTC))
	}
	if t.Location() != time.UTC {
		t = t.In(loc)
	}
	return exportd.DateTime(t)
}

// driverTimeFormats are the layouts modernc.org/sqlite's driver tries, in
// its order, on the text of DATE, DATETIME and TIMESTAMP columns.
var driverTimeFormats = []string{
	"2006-01-02 15:04:05.999999999-07:00",
	"2006-01-02T15:04:05.999999999-07:00",
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

// parseDriverTime parses s as modernc.org/sqlite's driver does (with no
// _loc parameter): Go's time.Time.String form, then, with a trailing 'Z'
// removed, driverTimeFormats in order. The common 'YYYY-MM-DD HH:MM:SS'
// takes a fast path with the same result.
func parseDriverTime(s string) (time.Time, bool) {
	if t, ok := parseDateTimeFast(s); ok {
		return t, true
	}
	ts := s
	if x := strings.Index(s, "m="); x > 0 {
		ts = s[:x]
	}
	if t, err := time.Parse("2006-01-02 15:04:05.999999999 -0700 MST", strings.TrimSpace(ts)); err == nil {
		return t, true
	}
	ts = strings.TrimSuffix(s, "Z")
	for _, f := range driverTimeFormats {
		if t, err := time.Parse(f, ts); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}

// parseDateTimeFast parses exactly 'YYYY-MM-DD HH:MM:SS' (in UTC), the
// text SQLite's datetime() writes, and reports false for anything else,
// including dates time.Parse would refuse.
func parseDateTimeFast(s string) (time.Time, bool) {
	if len(s) != 19 || s[4] != '-' || s[7] != '-' || s[10] != ' ' || s[13] != ':' || s[16] != ':' {
		return time.Time{}, false
	}
	num := func(i, n int) int {
		v := 0
		for _, c := range []byte(s[i : i+n]) {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	y, mo, d, h, mi, sec := num(0, 4), num(5, 2), num(8, 2), num(11, 2), num(14, 2), num(17, 2)
	if y < 0 || mo < 1 || mo > 12 || d < 1 || d > daysIn(time.Month(mo), y) || h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, 0, time.UTC), true
}

func daysIn(m time.Month, y int) int {
	return time.Date(y, m+1, 0, 0, 0, 0, 0, time.UTC).Day()
}

// convert converts text by the column's declared type.
func convert(v string, h hint, loc *time.Location) exportd.Value {
	switch h {
	case hintDate:
		if t, err := time.Parse(time.DateOnly, v); err == nil {
			return exportd.Date(t)
		}
	case hintDateTime:
		if t, ok := parseDateTime(v, loc); ok {
			return exportd.DateTime(t)
		}
	case hintDecimal:
		if isDecimal(v) {
			return exportd.Decimal(v)
		}
	}
	return exportd.String(v)
}

var dateTimeLayouts = []string{
	"2006-01-02 15:04:05.999999999",
	"2006-01-02T15:04:05.999999999",
	"2006-01-02 15:04",
	"2006-01-02T15:04",
	"2006-01-02",
}

var zonedLayouts = []string{
	"2006-01-02 15:04:05.999999999Z07:00",
	"2006-01-02T15:04:05.999999999Z07:00",
}

// parseDateTime parses the text forms SQLite's date functions accept: a
// time without a zone keeps its wall clock (in UTC), one with a zone is
// converted to loc.
func parseDateTime(s string, loc *time.Location) (time.Time, bool) {
	for _, l := range dateTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	for _, l := range zonedLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.In(loc), true
		}
	}
	return time.Time{}, false
}

// isDecimal reports whether s is a decimal in plain notation: an optional
// '-', digits, and optionally '.' and more digits.
func isDecimal(s string) bool {
	s = strings.TrimPrefix(s, "-")
	intPart, frac, hasDot := strings.Cut(s, ".")
	if intPart == "" || (hasDot && frac == "") {
		return false
	}
	for _, part := range []string{intPart, frac} {
		for i := 0; i < len(part); i++ {
			if part[i] < '0' || part[i] > '9' {
				return false
			}
		}
	}
	return true
}

// blobText renders a BLOB: as text when it is valid UTF-8, else as "\x"
// and lowercase hex (PostgreSQL's bytea form).
func blobText(b string) string {
	if utf8.ValidString(b) {
		return b
	}
	return `\x` + hex.EncodeToString([]byte(b))
}
