package sqlite

import (
	"context"
	"database/sql"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/exportd/exportd"
	_ "modernc.org/sqlite" // registers the "sqlite" driver
)

var (
	_ exportd.Source = (*Source)(nil)
	_ exportd.Rows   = (*Rows)(nil)
)

// Source runs queries on one SQLite database file.
type Source struct {
	db  *sql.DB
	loc *time.Location
}

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
	db, err := sql.Open("sqlite", dsn+sep+"_pragma=busy_timeout(10000)&_pragma=query_only(1)")
	if err != nil {
		return nil, fmt.Errorf("sqlite open: %w", err)
	}
	s := &Source{db: db, loc: opts.Loc()}
	if err := s.Ping(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return s, nil
}

// Ping checks that the database file can be read.
func (s *Source) Ping(ctx context.Context) error {
	var n int
	if err := s.db.QueryRowContext(ctx, "SELECT count(*) FROM sqlite_schema").Scan(&n); err != nil {
		return fmt.Errorf("sqlite ping: %w", err)
	}
	return nil
}

// Close closes every connection.
func (s *Source) Close() error { return s.db.Close() }

// bind rewrites q's named parameters. A DateArg binds as 'YYYY-MM-DD' and
// a time.Time as 'YYYY-MM-DD HH:MM:SS[.fff]' in the source's location, the
// text SQLite's date functions write, so that comparisons with stored text
// work. A nil params map binds NULL for every parameter (for Describe).
func (s *Source) bind(q exportd.Query, nulls bool) (string, []any, error) {
	return exportd.BindText(q, exportd.DialectSQLite, s.loc, "2006-01-02 15:04:05.999999999", nulls)
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

// Query runs q. Rows are stepped one at a time as the caller reads them.
// A positive q.Timeout bounds the whole statement (SQLite has no server
// side timeout: the statement is interrupted when its context expires).
func (s *Source) Query(ctx context.Context, q exportd.Query) (exportd.Rows, error) {
	text, args, err := s.bind(q, false)
	if err != nil {
		return nil, fmt.Errorf("sqlite query: %w", err)
	}
	cancel := context.CancelFunc(func() {})
	if q.Timeout > 0 {
		ctx, cancel = context.WithTimeoutCause(ctx, q.Timeout, exportd.ErrQueryTimeout)
	}
	rows, err := s.db.QueryContext(ctx, text, args...)
	if err != nil {
		cancel()
		return nil, wrap(ctx, "sqlite query", err)
	}
	cols, hints, err := columns(rows)
	if err != nil {
		rows.Close()
		cancel()
		return nil, fmt.Errorf("sqlite query: %w", err)
	}
	r := &Rows{rows: rows, ctx: ctx, cancel: cancel, cols: cols, hints: hints, loc: s.loc,
		vals: make([]any, len(cols)), ptrs: make([]any, len(cols))}
	for i := range r.vals {
		r.ptrs[i] = &r.vals[i]
	}
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
	rows   *sql.Rows
	ctx    context.Context
	cancel context.CancelFunc
	cols   []exportd.ResultColumn
	hints  []hint
	loc    *time.Location
	vals   []any
	ptrs   []any
	err    error
	closed bool
}

// Columns returns the result's columns.
func (r *Rows) Columns() []exportd.ResultColumn { return r.cols }

// Next reads the next row into dst.
func (r *Rows) Next(dst []exportd.Value) bool {
	if r.closed || r.err != nil || !r.rows.Next() {
		return false
	}
	if err := r.rows.Scan(r.ptrs...); err != nil {
		r.err = err
		return false
	}
	for i, v := range r.vals {
		dst[i] = convert(v, r.hints[i], r.loc)
	}
	return true
}

// Err returns the error that ended the rows.
func (r *Rows) Err() error {
	err := r.err
	if err == nil && !r.closed {
		err = r.rows.Err()
	}
	if err == nil {
		return nil
	}
	return wrap(r.ctx, "sqlite query", err)
}

// Close releases the statement; it is safe to call more than once.
func (r *Rows) Close() error {
	if r.closed {
		return nil
	}
	if r.err == nil {
		r.err = r.rows.Err()
	}
	r.closed = true
	err := r.rows.Close()
	r.cancel()
	if err != nil {
		return fmt.Errorf("sqlite close rows: %w", err)
	}
	return nil
}

func convert(v any, h hint, loc *time.Location) exportd.Value {
	switch v := v.(type) {
	case nil:
		return exportd.Null()
	case int64:
		switch {
		case h == hintBool && (v == 0 || v == 1):
			return exportd.Bool(v == 1)
		case h == hintFloat:
			return exportd.Float(float64(v))
		}
		return exportd.Int(v)
	case float64:
		return exportd.Float(v)
	case string:
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
	case time.Time:
		// The driver parsed the text of a DATE, DATETIME or TIMESTAMP
		// column. Text without a zone comes back in UTC: its wall clock is
		// kept as stored; text with a zone is converted to loc.
		if h == hintDate {
			y, m, d := v.Date()
			return exportd.Date(time.Date(y, m, d, 0, 0, 0, 0, time.UTC))
		}
		if v.Location() != time.UTC {
			v = v.In(loc)
		}
		return exportd.DateTime(v)
	case []byte:
		return exportd.String(blobText(v))
	}
	return exportd.String(fmt.Sprint(v))
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
func blobText(b []byte) string {
	if utf8.Valid(b) {
		return string(b)
	}
	return `\x` + hex.EncodeToString(b)
}
