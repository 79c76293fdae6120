package mysql

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/exportd/exportd"
	"github.com/go-sql-driver/mysql"
)

var (
	_ exportd.Source = (*Source)(nil)
	_ exportd.Rows   = (*Rows)(nil)
)

// Source runs queries on a MySQL or MariaDB database.
type Source struct {
	db      *sql.DB
	loc     *time.Location
	mariadb bool
}

// DSNFromURL converts mysql://user:pass@host:port/db?k=v into the driver's
// DSN, user:pass@tcp(host:port)/db?k=v. The port defaults to 3306; a
// socket=PATH parameter connects over a Unix socket instead.
func DSNFromURL(rawURL string) (string, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "", err
	}
	if u.Scheme != "mysql" {
		return "", fmt.Errorf("mysql url: scheme %q, want mysql", u.Scheme)
	}
	cfg := mysql.NewConfig()
	cfg.User = u.User.Username()
	cfg.Passwd, _ = u.User.Password()
	cfg.DBName = strings.TrimPrefix(u.Path, "/")
	q := u.Query()
	if sock := q.Get("socket"); sock != "" {
		cfg.Net, cfg.Addr = "unix", sock
		q.Del("socket")
	} else {
		port := u.Port()
		if port == "" {
			port = "3306"
		}
		cfg.Net, cfg.Addr = "tcp", net.JoinHostPort(u.Hostname(), port)
	}
	dsn := cfg.FormatDSN()
	if len(q) > 0 {
		sep := "?"
		if strings.Contains(dsn, "?") {
			sep = "&"
		}
		dsn += sep + q.Encode()
	}
	return dsn, nil
}

// Open connects to dsn, a mysql:// URL or a go-sql-driver DSN. The
// session time zone is set to UTC, so that TIMESTAMP values arrive in UTC
// and are converted to opts.Location.
func Open(ctx context.Context, dsn string, opts exportd.SourceOptions) (*Source, error) {
	if strings.HasPrefix(dsn, "mysql://") {
		var err error
		if dsn, err = DSNFromURL(dsn); err != nil {
			return nil, fmt.Errorf("mysql open: %w", err)
		}
	}
	cfg, err := mysql.ParseDSN(dsn)
	if err != nil {
		return nil, fmt.Errorf("mysql open: %w", err)
	}
	cfg.Loc = time.UTC
	cfg.ParseTime = false // times are parsed here, by column type
	cfg.InterpolateParams = true
	if cfg.Params == nil {
		cfg.Params = map[string]string{}
	}
	cfg.Params["time_zone"] = "'+00:00'"
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql open: %w", err)
	}
	s := &Source{db: sql.OpenDB(conn), loc: opts.Loc()}
	var version string
	if err := s.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("mysql open: %w", err)
	}
	s.mariadb = strings.Contains(strings.ToLower(version), "mariadb")
	return s, nil
}

// Ping checks that the database answers.
func (s *Source) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("mysql ping: %w", err)
	}
	return nil
}

// Close closes every connection.
func (s *Source) Close() error { return s.db.Close() }

// bind rewrites q's named parameters into ? placeholders. A DateArg binds
// as 'YYYY-MM-DD' and a time.Time as its wall clock in the source's
// location, the text DATE and DATETIME columns compare with.
func (s *Source) bind(q exportd.Query, nulls bool) (string, []any, error) {
	return exportd.BindText(q, exportd.DialectMySQL, s.loc, "2006-01-02 15:04:05.999999", nulls)
}

// Describe returns q's result columns without reading rows: q runs with
// sql_select_limit=0 and NULL for absent parameters.
func (s *Source) Describe(ctx context.Context, q exportd.Query) ([]exportd.ResultColumn, error) {
	text, args, err := s.bind(q, true)
	if err != nil {
		return nil, fmt.Errorf("mysql describe: %w", err)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return nil, fmt.Errorf("mysql describe: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SET SESSION sql_select_limit = 0"); err != nil {
		return nil, fmt.Errorf("mysql describe: %w", err)
	}
	cols, err := func() ([]exportd.ResultColumn, error) {
		rows, err := conn.QueryContext(ctx, text, args...)
		if err != nil {
			return nil, err
		}
		defer rows.Close()
		cols, _, err := columns(rows)
		return cols, err
	}()
	if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "SET SESSION sql_select_limit = DEFAULT"); rerr != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // do not pool it
	}
	if err != nil {
		return nil, fmt.Errorf("mysql describe: %w", err)
	}
	return cols, nil
}

// Query runs q on a connection of its own and streams its rows. The
// driver stops reading when ctx is cancelled, but the server would run on:
// so a cancel also sends KILL QUERY for that connection on another one.
// A positive q.Timeout becomes max_statement_time (MariaDB) or
// max_execution_time (MySQL, SELECT only), and bounds the query on this
// side too, at q.Timeout plus a grace: a database that cannot be heard
// (packets dropped, a host gone) sends no timeout error.
func (s *Source) Query(ctx context.Context, q exportd.Query) (exportd.Rows, error) {
	text, args, err := s.bind(q, false)
	if err != nil {
		return nil, fmt.Errorf("mysql query: %w", err)
	}
	stop := context.CancelFunc(func() {})
	if q.Timeout > 0 {
		ctx, stop = context.WithTimeoutCause(ctx, q.Timeout+silenceGrace, errSilent)
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		err = wrap(ctx, "mysql query", err) // before stop: it reads ctx's cause
		stop()
		return nil, err
	}
	var id int64
	if err := conn.QueryRowContext(ctx, "SELECT CONNECTION_ID()").Scan(&id); err != nil {
		conn.Close()
		err = wrap(ctx, "mysql query", err)
		stop()
		return nil, err
	}
	qctx, qcancel := context.WithCancel(ctx)
	cancel := func() { qcancel(); stop() }
	r := &Rows{ctx: ctx, cancel: cancel, conn: conn, loc: s.loc, killDone: make(chan struct{})}
	r.stopKill = context.AfterFunc(qctx, func() {
		defer close(r.killDone)
		kctx, kcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer kcancel()
		_, _ = s.db.ExecContext(kctx, "KILL QUERY "+strconv.FormatInt(id, 10))
	})
	if q.Timeout > 0 {
		if s.mariadb {
			secs := strconv.FormatFloat(max(q.Timeout.Seconds(), 0.001), 'f', 3, 64)
			text = "SET STATEMENT max_statement_time=" + secs + " FOR " + text
		} else {
			ms := strconv.FormatInt(max(q.Timeout.Milliseconds(), 1), 10)
			if _, err := conn.ExecContext(qctx, "SET SESSION max_execution_time = "+ms); err != nil {
				err = wrap(ctx, "mysql query", err) // before finish: it cancels the query's context
				r.finish(false)
				return nil, err
			}
			r.resetTimeout = true
		}
	}
	rows, err := conn.QueryContext(qctx, text, args...)
	if err != nil {
		err = wrap(ctx, "mysql query", err) // before finish: it cancels the query's context
		r.finish(false)
		return nil, err
	}
	r.rows = rows
	if r.cols, r.kinds, err = columns(rows); err != nil {
		r.finish(true)
		return nil, fmt.Errorf("mysql query: %w", err)
	}
	r.raw = make([]sql.RawBytes, len(r.cols))
	r.ptrs = make([]any, len(r.cols))
	for i := range r.raw {
		r.ptrs[i] = &r.raw[i]
	}
	return r, nil
}

// silenceGrace is how long past a statement timeout a query may stay
// silent before it is given up on this side (see Query).
const silenceGrace = 2 * time.Second

// errSilent ends a query whose database said nothing for longer than its
// statement timeout: the network between them is lost.
var errSilent = fmt.Errorf("no answer from the database within the statement timeout: %w", exportd.ErrQueryTimeout)

// wrap adds op to err and says why a statement ended early: a statement
// timeout wraps exportd.ErrQueryTimeout, a cancel the context's error.
func wrap(ctx context.Context, op string, err error) error {
	var myErr *mysql.MySQLError
	if errors.As(err, &myErr) && (myErr.Number == 1969 || myErr.Number == 3024) {
		// ER_STATEMENT_TIMEOUT (MariaDB), ER_QUERY_TIMEOUT (MySQL)
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

// kind is how a column's values are converted.
type kind uint8

const (
	kindString kind = iota
	kindBinary
	kindInt
	kindUint
	kindFloat
	kindDecimal
	kindDate
	kindDateTime  // DATETIME: wall clock
	kindTimestamp // TIMESTAMP: UTC, converted to the location
	kindBit
)

func kindOf(dbType string) (kind, exportd.Type) {
	switch dbType {
	case "TINYINT", "SMALLINT", "MEDIUMINT", "INT", "BIGINT", "YEAR",
		"UNSIGNED TINYINT", "UNSIGNED SMALLINT", "UNSIGNED MEDIUMINT", "UNSIGNED INT":
		return kindInt, exportd.TypeInt
	case "UNSIGNED BIGINT":
		return kindUint, exportd.TypeInt
	case "FLOAT", "DOUBLE":
		return kindFloat, exportd.TypeFloat
	case "DECIMAL":
		return kindDecimal, exportd.TypeDecimal
	case "DATE":
		return kindDate, exportd.TypeDate
	case "DATETIME":
		return kindDateTime, exportd.TypeDateTime
	case "TIMESTAMP":
		return kindTimestamp, exportd.TypeDateTime
	case "BIT":
		return kindBit, exportd.TypeInt
	case "BINARY", "VARBINARY", "BLOB", "TINYBLOB", "MEDIUMBLOB", "LONGBLOB", "GEOMETRY":
		return kindBinary, exportd.TypeString
	}
	return kindString, exportd.TypeString
}

func columns(rows *sql.Rows) ([]exportd.ResultColumn, []kind, error) {
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, nil, err
	}
	cols := make([]exportd.ResultColumn, len(cts))
	kinds := make([]kind, len(cts))
	for i, ct := range cts {
		k, typ := kindOf(ct.DatabaseTypeName())
		kinds[i] = k
		cols[i] = exportd.ResultColumn{Name: ct.Name(), DatabaseType: ct.DatabaseTypeName(), Type: typ}
	}
	return cols, kinds, nil
}

// Rows streams a result from one connection, held until Close.
type Rows struct {
	ctx          context.Context // the caller's
	cancel       context.CancelFunc
	conn         *sql.Conn
	rows         *sql.Rows
	stopKill     func() bool
	killDone     chan struct{}
	resetTimeout bool
	cols         []exportd.ResultColumn
	kinds        []kind
	raw          []sql.RawBytes
	ptrs         []any
	loc          *time.Location
	err          error
	done         bool
}

// Columns returns the result's columns.
func (r *Rows) Columns() []exportd.ResultColumn { return r.cols }

// Next reads the next row into dst. Its strings point into the driver's
// buffer and stay valid until the next call to Next.
func (r *Rows) Next(dst []exportd.Value) bool {
	if r.done {
		return false
	}
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			r.err = wrap(r.ctx, "mysql query", err)
		} else if r.ctx.Err() != nil {
			r.err = wrap(r.ctx, "mysql query", r.ctx.Err())
		}
		r.finish(false)
		return false
	}
	if err := r.rows.Scan(r.ptrs...); err != nil {
		r.err = fmt.Errorf("mysql query: %w", err)
		r.finish(true)
		return false
	}
	for i, b := range r.raw {
		v, err := convert(r.kinds[i], b, r.loc)
		if err != nil {
			r.err = fmt.Errorf("mysql query: column %s: %w", r.cols[i].Name, err)
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
// row kills the statement rather than reading the rest.
func (r *Rows) Close() error {
	r.finish(true)
	return nil
}

func (r *Rows) finish(early bool) {
	if r.done {
		return
	}
	r.done = true
	if early {
		r.cancel() // KILL QUERY, and the driver drops the connection
	}
	if r.rows != nil {
		r.rows.Close()
	}
	killed := !r.stopKill()
	if killed {
		<-r.killDone
	}
	if !killed && r.resetTimeout {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := r.conn.ExecContext(ctx, "SET SESSION max_execution_time = DEFAULT"); err != nil {
			killed = true
		}
		cancel()
	}
	if killed {
		// A connection that was sent KILL QUERY goes no further.
		_ = r.conn.Raw(func(any) error { return driver.ErrBadConn })
	}
	r.conn.Close()
	r.cancel()
}

func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

func convert(k kind, b sql.RawBytes, loc *time.Location) (exportd.Value, error) {
	if b == nil {
		return exportd.Null(), nil
	}
	switch k {
	case kindInt:
		n, err := strconv.ParseInt(str(b), 10, 64)
		if err != nil {
			return exportd.Value{}, err
		}
		return exportd.Int(n), nil
	case kindUint:
		n, err := strconv.ParseUint(str(b), 10, 64)
		if err != nil {
			return exportd.Value{}, err
		}
		if n > math.MaxInt64 {
			return exportd.Decimal(str(b)), nil
		}
		return exportd.Int(int64(n)), nil
	case kindFloat:
		f, err := strconv.ParseFloat(str(b), 64)
		if err != nil {
			return exportd.Value{}, err
		}
		return exportd.Float(f), nil
	case kindDecimal:
		return exportd.Decimal(str(b)), nil
	case kindDate:
		s := str(b)
		if s == "0000-00-00" {
			return exportd.Null(), nil
		}
		if t, err := time.Parse(time.DateOnly, s); err == nil {
			return exportd.Date(t), nil
		}
		return exportd.String(s), nil
	case kindDateTime, kindTimestamp:
		s := str(b)
		if strings.HasPrefix(s, "0000-00-00 00:00:00") {
			return exportd.Null(), nil
		}
		t, err := time.Parse("2006-01-02 15:04:05.999999", s)
		if err != nil {
			return exportd.String(s), nil
		}
		if k == kindTimestamp {
			t = t.In(loc)
		}
		return exportd.DateTime(t), nil
	case kindBit:
		if len(b) > 8 {
			return exportd.Value{}, fmt.Errorf("BIT value of %d bytes", len(b))
		}
		var n uint64
		for _, c := range b {
			n = n<<8 | uint64(c)
		}
		if n > math.MaxInt64 {
			return exportd.Decimal(strconv.FormatUint(n, 10)), nil
		}
		return exportd.Int(int64(n)), nil
	case kindBinary:
		if !utf8.Valid(b) {
			return exportd.String(`\x` + hex.EncodeToString(b)), nil
		}
	}
	return exportd.String(str(b)), nil
}
