package postgres

import (
	"context"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
	"unsafe"

	"github.com/exportd/exportd/internal/sqlparam"

	"github.com/exportd/exportd"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgconn/ctxwatch"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"
)

var (
	_ exportd.Source    = (*Source)(nil)
	_ exportd.Estimator = (*Source)(nil)
	_ exportd.Rows      = (*Rows)(nil)
)

// Source runs queries on a PostgreSQL database through a pgx pool.
type Source struct {
	pool *pgxpool.Pool
	loc  *time.Location
}

// Open connects to the database at dsn, a postgres:// URL or a libpq
// key=value string. A cancelled query context sends PostgreSQL a cancel
// request and keeps the connection.
func Open(ctx context.Context, dsn string, opts exportd.SourceOptions) (*Source, error) {
	cfg, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("postgres open: %w", err)
	}
	if opts.MaxConns > 0 && !strings.Contains(dsn, "pool_max_conns") {
		cfg.MaxConns = int32(min(opts.MaxConns, 1<<16))
	}
	if cfg.ConnConfig.ConnectTimeout == 0 {
		// A new connection to a database that cannot be heard fails
		// instead of waiting for ever (connect_timeout in the URL wins).
		cfg.ConnConfig.ConnectTimeout = 10 * time.Second
	}
	cfg.ConnConfig.BuildContextWatcherHandler = func(c *pgconn.PgConn) ctxwatch.Handler {
		// Send the cancel request at once; if the server has not answered
		// after DeadlineDelay, the connection is closed.
		return &pgconn.CancelRequestContextWatcherHandler{Conn: c, DeadlineDelay: 3 * time.Second}
	}
	pool, err := pgxpool.NewWithConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("postgres open: %w", err)
	}
	s := &Source{pool: pool, loc: opts.Loc()}
	if err := s.Ping(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return s, nil
}

// Ping checks that the database answers.
// MaxConns returns the size of the connection pool: a server runs no more
// exports at once than the pool can serve.
func (s *Source) MaxConns() int { return int(s.pool.Config().MaxConns) }

func (s *Source) Ping(ctx context.Context) error {
	if err := s.pool.Ping(ctx); err != nil {
		return fmt.Errorf("postgres ping: %w", err)
	}
	return nil
}

// Close closes every connection.
func (s *Source) Close() error {
	s.pool.Close()
	return nil
}

// bind rewrites q's named parameters into $n placeholders. A DateArg
// binds as midnight of its day in the source's location and a time.Time is
// moved to that location: a date or timestamp parameter takes its wall
// clock there, a timestamptz parameter its instant.
func (s *Source) bind(q exportd.Query) (string, []any, error) {
	text, args, err := sqlparam.Bind(q.SQL, q.Params, sqlparam.Postgres)
	if err != nil {
		return "", nil, err
	}
	for i, a := range args {
		switch v := a.(type) {
		case exportd.DateArg:
			y, m, d := v.Date()
			args[i] = time.Date(y, m, d, 0, 0, 0, 0, s.loc)
		case time.Time:
			args[i] = v.In(s.loc)
		}
	}
	return text, args, nil
}

// Describe prepares q (no parameter values are needed) and returns its
// result columns.
func (s *Source) Describe(ctx context.Context, q exportd.Query) ([]exportd.ResultColumn, error) {
	params := map[string]any{}
	for _, n := range sqlparam.Names(q.SQL, sqlparam.Postgres) {
		params[n] = q.Params[n]
	}
	text, _, err := sqlparam.Bind(q.SQL, params, sqlparam.Postgres)
	if err != nil {
		return nil, fmt.Errorf("postgres describe: %w", err)
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return nil, fmt.Errorf("postgres describe: %w", err)
	}
	defer conn.Release()
	sd, err := conn.Conn().PgConn().Prepare(ctx, "", text, nil)
	if err != nil {
		return nil, fmt.Errorf("postgres describe: %w", err)
	}
	cols, _ := columns(conn.Conn().TypeMap(), sd.Fields)
	return cols, nil
}

// EstimateRows returns the planner's row estimate for q (EXPLAIN).
func (s *Source) EstimateRows(ctx context.Context, q exportd.Query) (int64, bool) {
	text, args, err := s.bind(q)
	if err != nil {
		return 0, false
	}
	var plan string
	if err := s.pool.QueryRow(ctx, "EXPLAIN (FORMAT JSON) "+text, args...).Scan(&plan); err != nil {
		return 0, false
	}
	var out []struct {
		Plan struct {
			Rows float64 `json:"Plan Rows"`
		} `json:"Plan"`
	}
	if err := json.Unmarshal([]byte(plan), &out); err != nil || len(out) == 0 {
		return 0, false
	}
	return int64(out[0].Plan.Rows), true
}

// silenceGrace is how long past a statement timeout the rows may stay
// silent before the query is given up on this side (see Query).
const silenceGrace = 2 * time.Second

// errSilent ends a query whose database said nothing for longer than its
// statement timeout: the network between them is lost.
var errSilent = fmt.Errorf("no answer from the database within the statement timeout: %w", exportd.ErrQueryTimeout)

// Query runs q and streams its rows. A positive q.Timeout runs q in a
// transaction with SET LOCAL statement_timeout, and bounds the query on
// this side as well, at q.Timeout plus a grace: a database that cannot be
// heard (a network that drops packets, a host gone) sends no timeout
// error, and without the bound the rows would wait for it forever.
func (s *Source) Query(ctx context.Context, q exportd.Query) (exportd.Rows, error) {
	text, args, err := s.bind(q)
	if err != nil {
		return nil, fmt.Errorf("postgres query: %w", err)
	}
	qctx, cancel := context.WithCancel(ctx)
	if q.Timeout > 0 {
		var stop context.CancelFunc
		qctx, stop = context.WithTimeoutCause(qctx, q.Timeout+silenceGrace, errSilent)
		cancelParent := cancel
		cancel = func() { stop(); cancelParent() }
	}
	conn, err := s.pool.Acquire(qctx)
	if err != nil {
		err = wrap(qctx, "postgres query", err) // before cancel: it reads qctx's cause
		cancel()
		return nil, err
	}
	r := &Rows{ctx: qctx, cancel: cancel, conn: conn, loc: s.loc}
	if q.Timeout > 0 {
		ms := max(q.Timeout.Milliseconds(), 1)
		if _, err := conn.Exec(qctx, "BEGIN; SET LOCAL statement_timeout = "+strconv.FormatInt(ms, 10)); err != nil {
			err = wrap(qctx, "postgres query", err) // before finish: it cancels the query's context
			r.finish(false)
			return nil, err
		}
		r.inTx = true
	}
	rows, err := conn.Query(qctx, text, append([]any{resultFormats}, args...)...)
	if err != nil {
		err = wrap(qctx, "postgres query", err) // before finish: it cancels the query's context
		r.finish(false)
		return nil, err
	}
	r.rows = rows
	r.cols, r.oids = columns(conn.Conn().TypeMap(), rows.FieldDescriptions())
	return r, nil
}

// Type OIDs decoded from the binary format; every other type is read in
// its text format.
const (
	oidBool        = 16
	oidInt8        = 20
	oidInt2        = 21
	oidInt4        = 23
	oidOID         = 26
	oidFloat4      = 700
	oidFloat8      = 701
	oidDate        = 1082
	oidTimestamp   = 1114
	oidTimestampTZ = 1184
	oidNumeric     = 1700
)

// resultFormats asks for the binary format of the types decoded here and
// the text format of all others (numeric included: its text is exact).
var resultFormats = pgx.QueryResultFormatsByOID{
	oidBool: pgx.BinaryFormatCode, oidInt8: pgx.BinaryFormatCode, oidInt2: pgx.BinaryFormatCode,
	oidInt4: pgx.BinaryFormatCode, oidOID: pgx.BinaryFormatCode, oidFloat4: pgx.BinaryFormatCode,
	oidFloat8: pgx.BinaryFormatCode, oidDate: pgx.BinaryFormatCode, oidTimestamp: pgx.BinaryFormatCode,
	oidTimestampTZ: pgx.BinaryFormatCode,
}

func columns(m *pgtype.Map, fields []pgconn.FieldDescription) ([]exportd.ResultColumn, []uint32) {
	cols := make([]exportd.ResultColumn, len(fields))
	oids := make([]uint32, len(fields))
	for i, f := range fields {
		oids[i] = f.DataTypeOID
		name := "oid " + strconv.FormatUint(uint64(f.DataTypeOID), 10)
		if t, ok := m.TypeForOID(f.DataTypeOID); ok {
			name = t.Name
		}
		typ := exportd.TypeString
		switch f.DataTypeOID {
		case oidInt2, oidInt4, oidInt8, oidOID:
			typ = exportd.TypeInt
		case oidFloat4, oidFloat8:
			typ = exportd.TypeFloat
		case oidNumeric:
			typ = exportd.TypeDecimal
		case oidBool:
			typ = exportd.TypeBool
		case oidDate:
			typ = exportd.TypeDate
		case oidTimestamp, oidTimestampTZ:
			typ = exportd.TypeDateTime
		}
		cols[i] = exportd.ResultColumn{Name: f.Name, DatabaseType: name, Type: typ}
	}
	return cols, oids
}

// wrap adds op to err and says why a statement ended early: a statement
// timeout wraps exportd.ErrQueryTimeout, a cancel the context's error.
func wrap(ctx context.Context, op string, err error) error {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && pgErr.Code == "57014" && strings.Contains(pgErr.Message, "statement timeout") {
		return fmt.Errorf("%s: %w (%w)", op, exportd.ErrQueryTimeout, err)
	}
	if errors.Is(context.Cause(ctx), errSilent) {
		return fmt.Errorf("%s: %w (%w)", op, errSilent, err)
	}
	if ctx.Err() != nil && !errors.Is(err, ctx.Err()) {
		return fmt.Errorf("%s: %w (%w)", op, ctx.Err(), err)
	}
	return fmt.Errorf("%s: %w", op, err)
}

// Rows streams a result from one pooled connection, which it holds until
// the last row is read or Close is called.
type Rows struct {
	ctx    context.Context // the query's: the caller's, bounded by a statement timeout
	cancel context.CancelFunc
	conn   *pgxpool.Conn
	rows   pgx.Rows
	inTx   bool
	cols   []exportd.ResultColumn
	oids   []uint32
	loc    *time.Location
	err    error
	done   bool
}

// Columns returns the result's columns.
func (r *Rows) Columns() []exportd.ResultColumn { return r.cols }

// Next reads the next row into dst. Its strings point into the
// connection's read buffer and stay valid until the next call to Next.
func (r *Rows) Next(dst []exportd.Value) bool {
	if r.done {
		return false
	}
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			r.err = wrap(r.ctx, "postgres query", err)
		}
		r.finish(false)
		return false
	}
	for i, b := range r.rows.RawValues() {
		v, err := decode(r.oids[i], b, r.loc)
		if err != nil {
			r.err = fmt.Errorf("postgres query: column %s: %w", r.cols[i].Name, err)
			r.finish(true)
			return false
		}
		dst[i] = v
	}
	return true
}

// Err returns the error that ended the rows.
func (r *Rows) Err() error { return r.err }

// Close releases the rows and their connection. Closing before the last
// row cancels the statement on the server rather than reading the rest.
func (r *Rows) Close() error {
	r.finish(true)
	return nil
}

func (r *Rows) finish(early bool) {
	if r.done {
		return
	}
	r.done = true
	if r.rows != nil {
		if early {
			// Stopping before the end: cancel the statement on the server
			// instead of reading the rest of the result.
			r.cancel()
		}
		r.rows.Close()
	}
	if r.inTx {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		end := "COMMIT"
		if r.err != nil {
			end = "ROLLBACK"
		}
		_, _ = r.conn.Exec(ctx, end) // on failure Release destroys the connection
		cancel()
	}
	r.cancel()
	r.conn.Release()
}

// postgresEpoch is 2000-01-01 00:00:00 UTC in Unix microseconds.
const postgresEpoch = 946684800 * 1_000_000

func decode(oid uint32, b []byte, loc *time.Location) (exportd.Value, error) {
	if b == nil {
		return exportd.Null(), nil
	}
	bad := func() (exportd.Value, error) {
		return exportd.Value{}, fmt.Errorf("bad binary value of %d bytes for type oid %d", len(b), oid)
	}
	switch oid {
	case oidInt2:
		if len(b) != 2 {
			return bad()
		}
		return exportd.Int(int64(int16(binary.BigEndian.Uint16(b)))), nil
	case oidInt4:
		if len(b) != 4 {
			return bad()
		}
		return exportd.Int(int64(int32(binary.BigEndian.Uint32(b)))), nil
	case oidOID:
		if len(b) != 4 {
			return bad()
		}
		return exportd.Int(int64(binary.BigEndian.Uint32(b))), nil
	case oidInt8:
		if len(b) != 8 {
			return bad()
		}
		return exportd.Int(int64(binary.BigEndian.Uint64(b))), nil
	case oidFloat4:
		if len(b) != 4 {
			return bad()
		}
		// Through the shortest decimal form, so that real 0.1 is 0.1.
		f32 := math.Float32frombits(binary.BigEndian.Uint32(b))
		f, _ := strconv.ParseFloat(strconv.FormatFloat(float64(f32), 'g', -1, 32), 64)
		return exportd.Float(f), nil
	case oidFloat8:
		if len(b) != 8 {
			return bad()
		}
		return exportd.Float(math.Float64frombits(binary.BigEndian.Uint64(b))), nil
	case oidBool:
		if len(b) != 1 {
			return bad()
		}
		return exportd.Bool(b[0] != 0), nil
	case oidDate:
		if len(b) != 4 {
			return bad()
		}
		switch days := int32(binary.BigEndian.Uint32(b)); days {
		case math.MaxInt32:
			return exportd.String("infinity"), nil
		case math.MinInt32:
			return exportd.String("-infinity"), nil
		default:
			return exportd.Date(time.Date(2000, 1, 1+int(days), 0, 0, 0, 0, time.UTC)), nil
		}
	case oidTimestamp, oidTimestampTZ:
		if len(b) != 8 {
			return bad()
		}
		switch us := int64(binary.BigEndian.Uint64(b)); us {
		case math.MaxInt64:
			return exportd.String("infinity"), nil
		case math.MinInt64:
			return exportd.String("-infinity"), nil
		default:
			t := time.UnixMicro(us + postgresEpoch).UTC()
			if oid == oidTimestampTZ {
				t = t.In(loc)
			}
			return exportd.DateTime(t), nil
		}
	case oidNumeric:
		s := unsafe.String(unsafe.SliceData(b), len(b))
		if s == "NaN" || s == "Infinity" || s == "-Infinity" {
			return exportd.String(s), nil
		}
		return exportd.Decimal(s), nil
	}
	return exportd.String(unsafe.String(unsafe.SliceData(b), len(b))), nil
}
