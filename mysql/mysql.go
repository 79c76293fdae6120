package mysql

import (
	"bufio"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"
	"unicode/utf8"
	"unsafe"

	"github.com/exportd/exportd/internal/sqlparam"

	"github.com/exportd/exportd"
	"github.com/go-sql-driver/mysql"
)

var (
	_ exportd.Source = (*Source)(nil)
	_ exportd.Rows   = (*Rows)(nil)
)

// Source runs queries on a MySQL or MariaDB database.
type Source struct {
	db      *sql.DB // Ping, Describe and KILL QUERY
	conn    driver.Connector
	loc     *time.Location
	mariadb bool
	wire    bool // Query reads result sets from the socket itself (wire.go)

	mu     sync.Mutex
	idle   []*queryConn // connections for Query, see Query
	closed bool
}

// queryConn is a connection for Query: the driver's, and its socket when
// the source reads results itself.
type queryConn struct {
	drv driver.Conn
	raw *bufferedConn // nil when rows go through the driver
	w   *wire
}

// maxIdle is how many Query connections are kept open between queries.
const maxIdle = 2

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
	wire := false
	if cfg.DialFunc == nil && (cfg.Net == "tcp" || cfg.Net == "unix") {
		cfg.DialFunc = dialer(cfg.ReadTimeout, cfg.WriteTimeout)
		// The source reads results itself where the driver speaks plain
		// text on the socket: not under TLS or compression, and not
		// where the driver names columns table.column.
		wire = cfg.TLS == nil && !strings.Contains(cfg.FormatDSN(), "compress=true") && !cfg.ColumnsWithAlias
	}
	conn, err := mysql.NewConnector(cfg)
	if err != nil {
		return nil, fmt.Errorf("mysql open: %w", err)
	}
	s := &Source{db: sql.OpenDB(conn), conn: conn, loc: opts.Loc(), wire: wire}
	var version string
	if err := s.db.QueryRowContext(ctx, "SELECT VERSION()").Scan(&version); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("mysql open: %w", err)
	}
	s.mariadb = strings.Contains(strings.ToLower(version), "mariadb")
	return s, nil
}

// readBuffer is the size of a connection's read buffer. The driver reads
// its socket 4 KiB at a time: at a million rows (100 MB) those read system
// calls were a fifth of the reading goroutine's CPU.
const readBuffer = 64 << 10

// dialer returns a DialFunc that dials like the driver does and reads
// through a buffer of readBuffer bytes. The DSN's readTimeout and
// writeTimeout bound the source's own reads and writes (the driver sets
// its deadlines itself). A Connect whose context carries a *dialed slot
// gets the connection it dialed there.
func dialer(readTimeout, writeTimeout time.Duration) func(context.Context, string, string) (net.Conn, error) {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		var d net.Dialer
		nc, err := d.DialContext(ctx, network, addr)
		if err != nil {
			return nil, err
		}
		c := &bufferedConn{Conn: nc, readTimeout: readTimeout, writeTimeout: writeTimeout}
		c.r = bufio.NewReaderSize(socketReader{c}, readBuffer)
		if slot, ok := ctx.Value(dialedKey{}).(*dialed); ok {
			slot.c = c
		}
		return c, nil
	}
}

// dialed receives the connection dialed for one Connect.
type dialed struct{ c *bufferedConn }

type dialedKey struct{}

// bufferedConn is a connection whose reads go through a buffer.
type bufferedConn struct {
	net.Conn
	r                         *bufio.Reader
	raw                       syscall.RawConn // the socket (Unix), see readSocket
	readTimeout, writeTimeout time.Duration
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// socketReader reads the socket under bufferedConn's buffer, each read
// bounded by the read timeout.
type socketReader struct{ c *bufferedConn }

func (s socketReader) Read(p []byte) (int, error) {
	if t := s.c.readTimeout; t > 0 {
		if err := s.c.SetReadDeadline(time.Now().Add(t)); err != nil {
			return 0, err
		}
	}
	return s.c.readSocket(p)
}

// Ping checks that the database answers.
func (s *Source) Ping(ctx context.Context) error {
	if err := s.db.PingContext(ctx); err != nil {
		return fmt.Errorf("mysql ping: %w", err)
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
		c.drv.Close()
	}
	return s.db.Close()
}

// take takes an idle Query connection that is still good, or opens one;
// pooled says which.
func (s *Source) take(ctx context.Context) (c *queryConn, pooled bool, err error) {
	for {
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			return nil, false, errors.New("source closed")
		}
		n := len(s.idle)
		if n == 0 {
			s.mu.Unlock()
			c, err := s.connect(ctx)
			return c, false, err
		}
		c := s.idle[n-1]
		s.idle = s.idle[:n-1]
		s.mu.Unlock()
		if r, ok := c.drv.(driver.SessionResetter); ok && r.ResetSession(ctx) != nil {
			c.drv.Close()
			continue
		}
		return c, true, nil
	}
}

// connect opens a Query connection.
func (s *Source) connect(ctx context.Context) (*queryConn, error) {
	var slot dialed
	drv, err := s.conn.Connect(context.WithValue(ctx, dialedKey{}, &slot))
	if err != nil {
		return nil, err
	}
	c := &queryConn{drv: drv}
	if s.wire && slot.c != nil {
		c.raw, c.w = slot.c, newWire(slot.c)
	}
	return c, nil
}

// acquire takes a connection for a query and asks the server its id (for
// KILL QUERY). A pooled connection that turns out dead (the server
// restarted since) is dropped and another taken.
func (s *Source) acquire(ctx context.Context) (*queryConn, int64, error) {
	for {
		c, pooled, err := s.take(ctx)
		if err != nil {
			return nil, 0, err
		}
		var id int64
		if c.w != nil {
			err = c.wireQueryInt(ctx, "SELECT CONNECTION_ID()", &id)
		} else {
			err = queryInt(ctx, c.drv, "SELECT CONNECTION_ID()", &id)
		}
		if err == nil {
			return c, id, nil
		}
		s.release(c, false)
		var myErr *mysql.MySQLError
		if !pooled || ctx.Err() != nil || errors.As(err, &myErr) {
			return nil, 0, err
		}
	}
}

// release keeps c for the next Query, or closes it when it must not be
// reused or enough are kept.
func (s *Source) release(c *queryConn, reuse bool) {
	if v, ok := c.drv.(driver.Validator); ok && !v.IsValid() {
		reuse = false
	}
	if c.raw != nil && c.raw.r.Buffered() > 0 {
		reuse = false // not at a command's end: never seen, but never reused
	}
	s.mu.Lock()
	if reuse && !s.closed && len(s.idle) < maxIdle {
		s.idle = append(s.idle, c)
		c = nil
	}
	s.mu.Unlock()
	if c != nil {
		if c.raw != nil {
			// The driver says goodbye (COM_QUIT) as it closes, also
			// after an interrupt.
			c.raw.SetWriteDeadline(time.Now().Add(time.Second))
		}
		c.drv.Close()
	}
}

// wireQueryInt runs a query of one integer on c's socket. The server's
// status read at its end says how strings are quoted (see appendLiteral).
func (c *queryConn) wireQueryInt(ctx context.Context, query string, dst *int64) error {
	stop := context.AfterFunc(ctx, c.interrupt)
	err := func() error {
		cols, err := c.w.readResult(query)
		if err != nil {
			return err
		}
		if len(cols) != 1 {
			return fmt.Errorf("%s: %d columns", query, len(cols))
		}
		p, err := c.w.afterColumns()
		if err == nil && p == nil {
			p, err = c.w.next()
		}
		if err != nil {
			return err
		}
		if p[0] == pktErr {
			return errorPacket(p)
		}
		v, _, ok := lenString(p)
		n, isInt := atoi(v)
		if !ok || !isInt {
			return fmt.Errorf("%s: got %q", query, v)
		}
		if p, err = c.w.next(); err != nil {
			return err
		}
		if !c.w.end(p) {
			return fmt.Errorf("%s: more than one row", query)
		}
		c.w.drop()
		*dst = n
		return nil
	}()
	if !stop() {
		return ctx.Err() // the read was interrupted: the connection's deadline is spent
	}
	return err
}

// interrupt ends a read or write of c's socket at once; c is not reused.
func (c *queryConn) interrupt() {
	if c.raw != nil {
		c.raw.SetDeadline(time.Unix(1, 0))
	}
}

// bind rewrites q's named parameters into ? placeholders. A DateArg binds
// as 'YYYY-MM-DD' and a time.Time as its wall clock in the source's
// location, the text DATE and DATETIME columns compare with.
func (s *Source) bind(q exportd.Query, nulls bool) (string, []any, error) {
	return sqlparam.BindText(q, sqlparam.MySQL, s.loc, dateTimeLayout, nulls)
}

// dateTimeLayout is how a time.Time parameter is bound.
const dateTimeLayout = "2006-01-02 15:04:05.999999"

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
		return describeColumns(rows)
	}()
	if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "SET SESSION sql_select_limit = DEFAULT"); rerr != nil {
		_ = conn.Raw(func(any) error { return driver.ErrBadConn }) // do not pool it
	}
	if err != nil {
		return nil, fmt.Errorf("mysql describe: %w", err)
	}
	return cols, nil
}

// Query runs q on a connection of its own and streams its rows. Reading
// stops at once when ctx is cancelled, but the server would run on: so a
// cancel also sends KILL QUERY for that connection on another one.
// A positive q.Timeout becomes max_statement_time (MariaDB) or
// max_execution_time (MySQL, SELECT only), and bounds the query on this
// side too, at q.Timeout plus a grace: a database that cannot be heard
// (packets dropped, a host gone) sends no timeout error.
//
// On a plain-text connection the result is read from the socket by this
// package (wire.go), with no allocation per row; under TLS or compression
// the rows come from the driver's connection directly, not through
// database/sql (its Scan turned every integer and float the driver had
// parsed back into text, and took a lock per row).
func (s *Source) Query(ctx context.Context, q exportd.Query) (exportd.Rows, error) {
	text, args, err := s.bind(q, false)
	if err != nil {
		return nil, fmt.Errorf("mysql query: %w", err)
	}
	named := make([]driver.NamedValue, len(args))
	for i, a := range args {
		v, err := driver.DefaultParameterConverter.ConvertValue(a)
		if err != nil {
			return nil, fmt.Errorf("mysql query: parameter %d: %w", i+1, err)
		}
		named[i] = driver.NamedValue{Ordinal: i + 1, Value: v}
	}
	stop := context.CancelFunc(func() {})
	if q.Timeout > 0 {
		ctx, stop = context.WithTimeoutCause(ctx, q.Timeout+silenceGrace, errSilent)
	}
	conn, id, err := s.acquire(ctx)
	if err != nil {
		err = wrap(ctx, "mysql query", err) // before stop: it reads ctx's cause
		stop()
		return nil, err
	}
	qctx, qcancel := context.WithCancel(ctx)
	cancel := func() { qcancel(); stop() }
	r := &Rows{src: s, ctx: ctx, cancel: cancel, conn: conn, loc: s.loc, killDone: make(chan struct{})}
	r.stopKill = context.AfterFunc(qctx, func() {
		defer close(r.killDone)
		conn.interrupt() // a read of the socket returns at once
		kctx, kcancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer kcancel()
		_, _ = s.db.ExecContext(kctx, "KILL QUERY "+strconv.FormatInt(id, 10))
	})
	fail := func(err error) (exportd.Rows, error) {
		err = wrap(ctx, "mysql query", err) // before finish: it cancels the query's context
		r.broken = true
		r.finish(false)
		return nil, err
	}
	if conn.w != nil && len(named) > 0 {
		if text, err = s.bindLiterals(q, named, conn.w.status&statusNoBackslashEscape != 0); err != nil {
			return fail(err)
		}
	}
	if q.Timeout > 0 {
		if s.mariadb {
			secs := strconv.FormatFloat(max(q.Timeout.Seconds(), 0.001), 'f', 3, 64)
			text = "SET STATEMENT max_statement_time=" + secs + " FOR " + text
		} else {
			ms := strconv.FormatInt(max(q.Timeout.Milliseconds(), 1), 10)
			if _, err := conn.drv.(driver.ExecerContext).ExecContext(qctx, "SET SESSION max_execution_time = "+ms, nil); err != nil {
				return fail(err)
			}
			r.resetTimeout = true
		}
	}
	if conn.w == nil {
		rows, err := conn.drv.(driver.QueryerContext).QueryContext(qctx, text, named)
		if err != nil {
			return fail(err)
		}
		r.rows = rows
		r.cols, r.kinds = columns(rows)
		r.vals = make([]driver.Value, len(r.cols))
		return r, nil
	}
	wcols, err := conn.w.readResult(text)
	if err == nil && len(wcols) > 0 {
		r.first, err = conn.w.afterColumns()
	}
	if err != nil {
		var myErr *mysql.MySQLError
		if errors.As(err, &myErr) {
			r.broken = false // the server refused the statement: the connection is fine
			err = wrap(ctx, "mysql query", err)
			r.finish(false)
			return nil, err
		}
		return fail(readError(ctx, err))
	}
	r.cols, r.kinds = make([]exportd.ResultColumn, len(wcols)), make([]kind, len(wcols))
	r.scratch = make([]byte, 0, 32) // a FLOAT's text (see decodeRow)
	for i, c := range wcols {
		dbType := c.typeName()
		k, typ := kindOf(dbType)
		if c.fieldType == typeFloat {
			k = kindFloat32
		}
		r.cols[i] = exportd.ResultColumn{Name: c.name, DatabaseType: dbType, Type: typ}
		r.kinds[i] = k
	}
	if len(wcols) == 0 { // no result set
		r.more = conn.w.status&statusMoreResults != 0
		conn.w.drop()
		r.finish(false)
	}
	return r, nil
}

// bindLiterals binds q's parameters, args, as literals in its text, as
// the driver's client-side interpolation writes them (the source sends the
// text itself): the named parameters are found outside string literals,
// quoted identifiers and comments, as for bind.
func (s *Source) bindLiterals(q exportd.Query, args []driver.NamedValue, noBackslash bool) (string, error) {
	lits := make([]string, len(args))
	for i, a := range args {
		b, err := appendLiteral(nil, a.Value, noBackslash)
		if err != nil {
			return "", fmt.Errorf("parameter %d: %w", i+1, err)
		}
		lits[i] = string(b)
	}
	d := sqlparam.MySQL
	d.Placeholder = func(n int) string { return lits[n-1] }
	text, _, err := sqlparam.BindText(q, d, s.loc, dateTimeLayout, false)
	return text, err
}

// readError is the error of a failed read of a query's socket. A read
// that ctx's end interrupted (see queryConn.interrupt) failed for that
// reason alone, as the driver reports it: not for the deadline it hit.
func readError(ctx context.Context, err error) error {
	if ctx.Err() != nil && errors.Is(err, os.ErrDeadlineExceeded) {
		return ctx.Err()
	}
	return fmt.Errorf("reading the result: %w", err)
}

// silenceGrace is how long past a statement timeout a query may stay
// silent before it is given up on this side (see Query).
const silenceGrace = 2 * time.Second

// errSilent ends a query whose database said nothing for longer than its
// statement timeout: the network between them is lost.
var errSilent = fmt.Errorf("no answer from the database within the statement timeout: %w", exportd.ErrQueryTimeout)

// queryInt runs a query of one integer on conn.
func queryInt(ctx context.Context, conn driver.Conn, query string, dst *int64) error {
	rows, err := conn.(driver.QueryerContext).QueryContext(ctx, query, nil)
	if err != nil {
		return err
	}
	defer rows.Close()
	v := make([]driver.Value, 1)
	if err := rows.Next(v); err != nil {
		return err
	}
	switch n := v[0].(type) {
	case int64:
		*dst = n
	case uint64:
		*dst = int64(n)
	default:
		return fmt.Errorf("%s: got %T", query, v[0])
	}
	return nil
}

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
	kindFloat32 // FLOAT read by this package: see decodeRow
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

// columns returns the columns of rows as Describe reports them.
func describeColumns(rows *sql.Rows) ([]exportd.ResultColumn, error) {
	cts, err := rows.ColumnTypes()
	if err != nil {
		return nil, err
	}
	cols := make([]exportd.ResultColumn, len(cts))
	for i, ct := range cts {
		_, typ := kindOf(ct.DatabaseTypeName())
		cols[i] = exportd.ResultColumn{Name: ct.Name(), DatabaseType: ct.DatabaseTypeName(), Type: typ}
	}
	return cols, nil
}

// columns returns the columns of the driver's rows and their kinds.
func columns(rows driver.Rows) ([]exportd.ResultColumn, []kind) {
	names := rows.Columns()
	typed, _ := rows.(driver.RowsColumnTypeDatabaseTypeName)
	cols := make([]exportd.ResultColumn, len(names))
	kinds := make([]kind, len(names))
	for i, name := range names {
		var dbType string
		if typed != nil {
			dbType = typed.ColumnTypeDatabaseTypeName(i)
		}
		k, typ := kindOf(dbType)
		kinds[i] = k
		cols[i] = exportd.ResultColumn{Name: name, DatabaseType: dbType, Type: typ}
	}
	return cols, kinds
}

// Rows streams a result from one connection, held until Close.
type Rows struct {
	src          *Source
	ctx          context.Context // the caller's
	cancel       context.CancelFunc
	conn         *queryConn
	rows         driver.Rows // the driver's, when it reads the result
	first        []byte      // the packet after the column definitions, when it is a row or the end
	stopKill     func() bool
	killDone     chan struct{}
	resetTimeout bool
	cols         []exportd.ResultColumn
	kinds        []kind
	vals         []driver.Value
	scratch      []byte // text made for this row's values (see convert)
	loc          *time.Location
	err          error
	done         bool
	broken       bool // the connection is not at a command's end
	more         bool // more result sets follow (not read: the connection is dropped)
}

// Columns returns the result's columns.
func (r *Rows) Columns() []exportd.ResultColumn { return r.cols }

// Next reads the next row into dst. Its strings point into the
// connection's read buffer and stay valid until the next call to Next.
func (r *Rows) Next(dst []exportd.Value) bool {
	if r.done {
		return false
	}
	if r.rows == nil {
		return r.nextWire(dst)
	}
	if err := r.rows.Next(r.vals); err != nil {
		if err != io.EOF {
			r.err = wrap(r.ctx, "mysql query", err)
		} else if r.ctx.Err() != nil {
			r.err = wrap(r.ctx, "mysql query", r.ctx.Err())
		}
		r.finish(false)
		return false
	}
	r.scratch = r.scratch[:0]
	for i, v := range r.vals {
		var err error
		if dst[i], err = r.convert(r.kinds[i], v); err != nil {
			r.err = fmt.Errorf("mysql query: column %s: %w", r.cols[i].Name, err)
			r.finish(true)
			return false
		}
	}
	return true
}

// nextWire reads the next row from the socket.
func (r *Rows) nextWire(dst []exportd.Value) bool {
	w := r.conn.w
	p := r.first
	r.first = nil
	if p == nil {
		var err error
		if p, err = w.next(); err != nil {
			r.err = wrap(r.ctx, "mysql query", readError(r.ctx, err))
			r.broken = true
			r.finish(false)
			return false
		}
	}
	if w.end(p) {
		w.drop()
		r.more = w.status&statusMoreResults != 0
		if r.ctx.Err() != nil {
			r.err = wrap(r.ctx, "mysql query", r.ctx.Err())
		}
		r.finish(false)
		return false
	}
	if p[0] == pktErr {
		w.drop()
		r.err = wrap(r.ctx, "mysql query", errorPacket(p))
		r.finish(false)
		return false
	}
	if err := decodeRow(p, r.kinds, dst, r.loc, r.scratch[:0]); err != nil {
		r.err = fmt.Errorf("mysql query: %w", err)
		r.finish(true)
		return false
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
		r.cancel() // KILL QUERY, and the connection is dropped
	}
	if r.rows != nil {
		r.rows.Close()
	}
	killed := !r.stopKill()
	if killed {
		<-r.killDone
	}
	reuse := !killed && !r.broken && !r.more
	if reuse && r.resetTimeout {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		if _, err := r.conn.drv.(driver.ExecerContext).ExecContext(ctx, "SET SESSION max_execution_time = DEFAULT", nil); err != nil {
			reuse = false
		}
		cancel()
	}
	// A connection that was sent KILL QUERY goes no further.
	r.src.release(r.conn, reuse)
	r.cancel()
}

func str(b []byte) string { return unsafe.String(unsafe.SliceData(b), len(b)) }

// convert converts a value as the driver gives it: it has already parsed
// integers and floats (the text protocol's digits) by the column's wire
// type; everything else comes as a view of its buffer. A value of a type
// the column's kind does not expect is turned into text the way
// database/sql's Scan into bytes did, and converted as text.
func (r *Rows) convert(k kind, v driver.Value) (exportd.Value, error) {
	start := len(r.scratch)
	switch v := v.(type) {
	case nil:
		return exportd.Null(), nil
	case []byte:
		return convertText(k, v, r.loc)
	case int64:
		if k == kindInt || k == kindUint {
			return exportd.Int(v), nil
		}
		r.scratch = strconv.AppendInt(r.scratch, v, 10)
	case uint64:
		if (k == kindInt || k == kindUint) && v <= math.MaxInt64 {
			return exportd.Int(int64(v)), nil
		}
		r.scratch = strconv.AppendUint(r.scratch, v, 10)
	case float64:
		if k == kindFloat {
			return exportd.Float(v), nil
		}
		r.scratch = strconv.AppendFloat(r.scratch, v, 'g', -1, 64)
	case float32:
		// A FLOAT: its shortest text, read as a float64 (0.1, not
		// 0.10000000149011612).
		r.scratch = strconv.AppendFloat(r.scratch, float64(v), 'g', -1, 32)
	default:
		return exportd.Value{}, fmt.Errorf("unexpected driver value %T", v)
	}
	return convertText(k, r.scratch[start:], r.loc)
}

// convertText converts a value given as text.
func convertText(k kind, b []byte, loc *time.Location) (exportd.Value, error) {
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
		if t, ok := parseDateTime(b); ok && len(b) == len(time.DateOnly) {
			return exportd.Date(t), nil
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
		t, ok := parseDateTime(b)
		if !ok {
			var err error
			if t, err = time.Parse("2006-01-02 15:04:05.999999", s); err != nil {
				return exportd.String(s), nil
			}
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

// parseDateTime parses the text MySQL sends for DATE, DATETIME and
// TIMESTAMP values, 'YYYY-MM-DD', 'YYYY-MM-DD HH:MM:SS' or with 1 to 9
// fractional digits, as a time in UTC without time.Parse's generality. It
// reports false for anything else, including dates time.Parse refuses
// ('2024-00-00', '2023-02-29'), which then take the general path.
func parseDateTime(b []byte) (time.Time, bool) {
	num := func(i, n int) int {
		v := 0
		for _, c := range b[i : i+n] {
			if c < '0' || c > '9' {
				return -1
			}
			v = v*10 + int(c-'0')
		}
		return v
	}
	if len(b) < 10 || b[4] != '-' || b[7] != '-' {
		return time.Time{}, false
	}
	y, mo, d := num(0, 4), num(5, 2), num(8, 2)
	if y < 0 || mo < 1 || mo > 12 || d < 1 || d > daysIn(y, mo) {
		return time.Time{}, false
	}
	if len(b) == 10 {
		return time.Date(y, time.Month(mo), d, 0, 0, 0, 0, time.UTC), true
	}
	if len(b) < 19 || b[10] != ' ' || b[13] != ':' || b[16] != ':' {
		return time.Time{}, false
	}
	h, mi, sec := num(11, 2), num(14, 2), num(17, 2)
	if h < 0 || h > 23 || mi < 0 || mi > 59 || sec < 0 || sec > 59 {
		return time.Time{}, false
	}
	ns := 0
	if len(b) > 19 {
		frac := len(b) - 20
		if b[19] != '.' || frac < 1 || frac > 9 {
			return time.Time{}, false
		}
		if ns = num(20, frac); ns < 0 {
			return time.Time{}, false
		}
		for range 9 - frac {
			ns *= 10
		}
	}
	return time.Date(y, time.Month(mo), d, h, mi, sec, ns, time.UTC), true
}

// daysIn returns the number of days in month mo (1-12) of year y.
func daysIn(y, mo int) int {
	if mo == 2 {
		if y%4 == 0 && (y%100 != 0 || y%400 == 0) {
			return 29
		}
		return 28
	}
	return 30 + (mo+mo/8)%2
}
