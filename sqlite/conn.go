package sqlite

import (
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"strings"
	"unsafe"

	"modernc.org/libc"
	sqlite3 "modernc.org/sqlite/lib"
)

// conn is one SQLite connection driven through modernc.org/sqlite/lib, the
// same pure-Go SQLite the database/sql driver wraps, without that driver's
// per-value costs: it opens every connection with SQLITE_OPEN_FULLMUTEX (a
// mutex taken and released around each sqlite3_column_* call), copies each
// text value into a new Go string and parses DATETIME text with
// time.Parse. A conn is opened SQLITE_OPEN_NOMUTEX and used by one
// goroutine at a time; only sqlite3_interrupt, which SQLite allows from any
// thread, is called from another one, with a TLS of its own.
type conn struct {
	tls *libc.TLS
	db  uintptr
}

// dsnConfig is what a raw connection needs from a DSN that the
// database/sql driver also accepts.
type dsnConfig struct {
	name    string   // the file name or file: URI given to sqlite3_open_v2
	vfs     string   // the vfs parameter
	pragmas []string // the _pragma values, in order
	busy    string   // _busy_timeout (or _timeout), milliseconds
}

// parseDSN reads dsn the way modernc.org/sqlite does: the query is kept in
// the name only for a file: URI (SQLite reads its own URI parameters
// there). Of the driver's own parameters (those starting with '_'), the
// ones that matter to a read-only connection are applied: _pragma,
// _busy_timeout and _timeout; _txlock and _time_format, which only concern
// writes, are ignored; any other one (they change how values are converted,
// which this package does itself) is refused, so that no setting is
// silently dropped.
func parseDSN(dsn string) (dsnConfig, error) {
	cfg := dsnConfig{name: dsn}
	pos := strings.IndexByte(dsn, '?')
	if pos < 1 {
		return cfg, nil
	}
	q, err := url.ParseQuery(dsn[pos+1:])
	if err != nil {
		return cfg, err
	}
	if !strings.HasPrefix(dsn, "file:") {
		cfg.name = dsn[:pos]
	}
	for k, vs := range q {
		switch k {
		case "vfs":
			cfg.vfs = vs[len(vs)-1]
		case "_pragma":
			cfg.pragmas = vs
		case "_busy_timeout", "_timeout":
			cfg.busy = vs[len(vs)-1]
			if _, err := strconv.ParseInt(cfg.busy, 10, 32); err != nil {
				return cfg, fmt.Errorf("%s=%q: %w", k, cfg.busy, err)
			}
		case "_txlock", "_time_format":
		default:
			if strings.HasPrefix(k, "_") {
				return cfg, fmt.Errorf("DSN parameter %s is not supported by the exportd source", k)
			}
		}
	}
	return cfg, nil
}

// openConn opens a connection for reading (no SQLITE_OPEN_CREATE: a missing
// file is an error) and runs the DSN's pragmas.
func openConn(cfg dsnConfig) (*conn, error) {
	c := &conn{tls: libc.NewTLS()}
	name, err := libc.CString(cfg.name)
	if err != nil {
		c.tls.Close()
		return nil, err
	}
	defer libc.Xfree(c.tls, name)
	var vfs uintptr
	if cfg.vfs != "" {
		if vfs, err = libc.CString(cfg.vfs); err != nil {
			c.tls.Close()
			return nil, err
		}
		defer libc.Xfree(c.tls, vfs)
	}
	pdb := c.tls.Alloc(8)
	defer c.tls.Free(8)
	*(*uintptr)(ptr(pdb)) = 0
	rc := sqlite3.Xsqlite3_open_v2(c.tls, name, pdb,
		sqlite3.SQLITE_OPEN_READWRITE|sqlite3.SQLITE_OPEN_URI|sqlite3.SQLITE_OPEN_NOMUTEX, vfs)
	c.db = *(*uintptr)(ptr(pdb))
	if rc != sqlite3.SQLITE_OK {
		err := c.error(rc)
		c.close()
		return nil, err
	}
	sqlite3.Xsqlite3_extended_result_codes(c.tls, c.db, 1)
	if cfg.busy != "" {
		ms, _ := strconv.ParseInt(cfg.busy, 10, 32)
		sqlite3.Xsqlite3_busy_timeout(c.tls, c.db, int32(ms))
	}
	for _, p := range cfg.pragmas {
		if err := c.exec("PRAGMA " + p); err != nil {
			c.close()
			return nil, fmt.Errorf("_pragma=%s: %w", p, err)
		}
	}
	return c, nil
}

// close closes the connection and frees its TLS.
func (c *conn) close() {
	if c.db != 0 {
		sqlite3.Xsqlite3_close_v2(c.tls, c.db)
		c.db = 0
	}
	c.tls.Close()
}

// exec runs one statement to its end, discarding rows.
func (c *conn) exec(sql string) error {
	stmt, err := c.prepare(sql)
	if err != nil {
		return err
	}
	defer sqlite3.Xsqlite3_finalize(c.tls, stmt)
	for {
		switch rc := sqlite3.Xsqlite3_step(c.tls, stmt); rc {
		case sqlite3.SQLITE_ROW:
		case sqlite3.SQLITE_DONE:
			return nil
		default:
			return c.error(rc)
		}
	}
}

var errMultiple = errors.New("more than one statement")

// prepare compiles sql, which must hold exactly one statement (comments and
// white space may follow it).
func (c *conn) prepare(sql string) (uintptr, error) {
	z, err := libc.CString(sql)
	if err != nil {
		return 0, err
	}
	defer libc.Xfree(c.tls, z)
	out := c.tls.Alloc(16) // the statement, then the tail
	defer c.tls.Free(16)
	pstmt, ptail := out, out+8
	prep := func(z uintptr) (uintptr, uintptr, error) {
		*(*uintptr)(ptr(pstmt)) = 0
		*(*uintptr)(ptr(ptail)) = 0
		if rc := sqlite3.Xsqlite3_prepare_v2(c.tls, c.db, z, -1, pstmt, ptail); rc != sqlite3.SQLITE_OK {
			return 0, 0, c.error(rc)
		}
		return *(*uintptr)(ptr(pstmt)), *(*uintptr)(ptr(ptail)), nil
	}
	stmt, tail, err := prep(z)
	if err != nil {
		return 0, err
	}
	if stmt == 0 {
		return 0, errors.New("no statement")
	}
	for tail != 0 && *(*byte)(ptr(tail)) != 0 {
		next, rest, err := prep(tail)
		if next != 0 {
			sqlite3.Xsqlite3_finalize(c.tls, next)
			err = errMultiple
		}
		if err != nil {
			sqlite3.Xsqlite3_finalize(c.tls, stmt)
			return 0, err
		}
		tail = rest
	}
	return stmt, nil
}

// bind binds args to stmt's ? parameters in order.
func (c *conn) bind(stmt uintptr, args []any) error {
	for i, a := range args {
		n := int32(i + 1)
		var rc int32
		switch v := a.(type) {
		case nil:
			rc = sqlite3.Xsqlite3_bind_null(c.tls, stmt, n)
		case int64:
			rc = sqlite3.Xsqlite3_bind_int64(c.tls, stmt, n, v)
		case int:
			rc = sqlite3.Xsqlite3_bind_int64(c.tls, stmt, n, int64(v))
		case float64:
			rc = sqlite3.Xsqlite3_bind_double(c.tls, stmt, n, v)
		case bool:
			var b int64
			if v {
				b = 1
			}
			rc = sqlite3.Xsqlite3_bind_int64(c.tls, stmt, n, b)
		case string:
			z, err := libc.CString(v)
			if err != nil {
				return err
			}
			// SQLITE_TRANSIENT: SQLite copies the text before returning.
			rc = sqlite3.Xsqlite3_bind_text(c.tls, stmt, n, z, int32(len(v)), sqlite3.SQLITE_TRANSIENT)
			libc.Xfree(c.tls, z)
		default:
			return fmt.Errorf("parameter %d: cannot bind %T", n, a)
		}
		if rc != sqlite3.SQLITE_OK {
			return fmt.Errorf("parameter %d: %w", n, c.error(rc))
		}
	}
	return nil
}

// sqliteError is an error SQLite returned, with its (extended) result code.
type sqliteError struct {
	code int32
	msg  string // SQLite's description and message
}

func (e *sqliteError) Error() string { return e.msg }

// error describes rc with the connection's last message, in the form
// modernc.org/sqlite gives: "<description>: <message> (<code>)".
func (c *conn) error(rc int32) error {
	desc := libc.GoString(sqlite3.Xsqlite3_errstr(c.tls, rc))
	if c.db == 0 {
		return &sqliteError{code: rc, msg: fmt.Sprintf("%s (%d)", desc, rc)}
	}
	msg := libc.GoString(sqlite3.Xsqlite3_errmsg(c.tls, c.db))
	if msg == desc {
		return &sqliteError{code: rc, msg: fmt.Sprintf("%s (%d)", desc, rc)}
	}
	return &sqliteError{code: rc, msg: fmt.Sprintf("%s: %s (%d)", desc, msg, rc)}
}

// ptr turns an address in libc's memory (outside the Go heap) into a
// pointer; reading through the uintptr's own address keeps go vet's
// unsafeptr check, meant for Go heap addresses, quiet.
func ptr(p uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&p)) }

// text returns n bytes at p as a string that views libc's memory: valid
// until the statement steps again or is finalized.
func text(p uintptr, n int32) string {
	if p == 0 || n <= 0 {
		return ""
	}
	return unsafe.String((*byte)(ptr(p)), int(n))
}
