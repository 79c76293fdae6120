package audit

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // registers the "pgx" driver
	_ "modernc.org/sqlite"             // registers the "sqlite" driver
)

// Dialect is the SQL database holding an audit trail.
type Dialect uint8

// The supported databases.
const (
	SQLite Dialect = iota + 1
	PostgreSQL
)

// DefaultTable is the table of the records unless Options.Table says
// otherwise; the head and checkpoint live in DefaultTable+"_head".
const DefaultTable = "exportd_audit"

// DefaultRetention is how long records are kept unless Options.Retention
// says otherwise: two years, the longer of the periods the 개인정보의
// 안전성 확보조치 기준 asks for.
const DefaultRetention = 2 * 365 * 24 * time.Hour

// Options configure a Store.
type Options struct {
	// Table names the records' table, optionally schema-qualified
	// ("audit.exports"); DefaultTable when empty.
	Table string
	// Keys sign new records and verify the chain. A Store without keys can
	// only read (Export).
	Keys Keys
	// Log, when set, receives each appended record as one JSON line,
	// whatever else is written there (such as a server's text-format log
	// on the same stderr):
	//
	//	{"time":"…","level":"INFO","msg":"export audit","audit":{…,"seq":7,…,"mac":"…"}}
	//
	// the record with its seq and MAC, in a single Write. It is the line
	// [Store.VerifyAgainstLog] reads back, and is written at every log
	// level. Ship it to another system (journald, a log collector): it is
	// what finds the newest records cut off.
	Log io.Writer
	// Retention is how long PruneExpired keeps records; DefaultRetention
	// when zero.
	Retention time.Duration
	// ReadOnly opens an existing trail: the tables are not created, and a
	// missing table (or SQLite file) is an error. For the CLI.
	ReadOnly bool
}

// Store is an append-only, hash-chained audit trail in a SQL database.
// Several processes (nodes) may append to the same trail at once: appends
// are serialized by the database (SQLite: BEGIN IMMEDIATE; PostgreSQL: a
// row lock on the head row). A Store is safe for concurrent use.
type Store struct {
	db        *sql.DB
	ownDB     bool
	dialect   Dialect
	table     string // records
	head      string // head and checkpoint (one row)
	index     string
	refIndex  string
	columns   string // recordColumns, with "0" for the ref and '' for the sheets of a read-only trail made before them
	keys      Keys
	keysMu    sync.RWMutex // keys, replaced by SetKeys
	log       slog.Handler // JSON lines on Options.Log; nil without one
	retention time.Duration
}

var tableRE = regexp.MustCompile(`^([a-z_][a-z0-9_]{0,40}\.)?[a-z_][a-z0-9_]{0,40}$`)

// Open opens the trail in the database a URL names: sqlite:PATH (also
// sqlite://PATH, sqlite:///ABSOLUTE/PATH) or postgres://… (postgresql://).
// A SQLite file is created when missing unless opts.ReadOnly is set. The
// tables are created when missing (unless ReadOnly).
func Open(ctx context.Context, url string, opts Options) (*Store, error) {
	scheme, rest, ok := strings.Cut(url, ":")
	if !ok {
		return nil, errors.New("audit: database url has no scheme (want sqlite:PATH or postgres://)")
	}
	var (
		db      *sql.DB
		dialect Dialect
		err     error
	)
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		dialect = PostgreSQL
		db, err = sql.Open("pgx", url)
	case "sqlite", "sqlite3":
		dialect = SQLite
		path := strings.TrimPrefix(rest, "//")
		if path == "" {
			return nil, fmt.Errorf("audit: sqlite url %q has no path", url)
		}
		file, query, _ := strings.Cut(path, "?")
		if opts.ReadOnly {
			if _, err := os.Stat(strings.TrimPrefix(file, "file:")); err != nil {
				return nil, fmt.Errorf("audit: %w", err)
			}
		}
		sep := "?"
		if query != "" {
			sep = "&"
		}
		db, err = sql.Open("sqlite", path+sep+"_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	default:
		return nil, fmt.Errorf("audit: unsupported database url scheme %q (want sqlite:PATH or postgres://)", scheme)
	}
	if err != nil {
		return nil, fmt.Errorf("audit: open: %w", err)
	}
	s, err := New(ctx, db, dialect, opts)
	if err != nil {
		db.Close()
		return nil, err
	}
	s.ownDB = true
	return s, nil
}

// New returns a Store on an open database, such as the jobs database, and
// creates its tables when missing (unless opts.ReadOnly). A SQLite
// database should have a busy timeout (PRAGMA busy_timeout), or concurrent
// appends fail with SQLITE_BUSY instead of waiting. Close does not close db.
func New(ctx context.Context, db *sql.DB, dialect Dialect, opts Options) (*Store, error) {
	if dialect != SQLite && dialect != PostgreSQL {
		return nil, fmt.Errorf("audit: unknown dialect %d", dialect)
	}
	t := opts.Table
	if t == "" {
		t = DefaultTable
	}
	if !tableRE.MatchString(t) {
		return nil, fmt.Errorf("audit: invalid table name %q (want [schema.]name in [a-z0-9_])", t)
	}
	base := t[strings.LastIndexByte(t, '.')+1:]
	s := &Store{
		db: db, dialect: dialect, table: t, head: t + "_head", index: base + "_time", refIndex: base + "_ref",
		columns: recordColumns, keys: opts.Keys, retention: opts.Retention,
	}
	if opts.Log != nil {
		s.log = slog.NewJSONHandler(opts.Log, nil)
	}
	if s.retention <= 0 {
		s.retention = DefaultRetention
	}
	if opts.ReadOnly {
		var n int64
		if err := db.QueryRowContext(ctx, "SELECT count(*) FROM "+s.head).Scan(&n); err != nil {
			return nil, fmt.Errorf("audit: no trail in %s: %w", t, err)
		}
		if _, err := db.ExecContext(ctx, "SELECT ref FROM "+s.table+" WHERE 1 = 0"); err != nil {
			// a trail written before refs: read it as it is, every ref 0
			s.columns = strings.Replace(s.columns, ", ref,", ", 0,", 1)
		}
		if _, err := db.ExecContext(ctx, "SELECT sheets FROM "+s.table+" WHERE 1 = 0"); err != nil {
			// a trail written before sheets: none
			s.columns = strings.TrimSuffix(s.columns, "sheets") + "''"
		}
		return s, nil
	}
	if err := s.init(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// Close closes the database if Open opened it.
func (s *Store) Close() error {
	if s.ownDB {
		return s.db.Close()
	}
	return nil
}

const recordColumns = "seq, time_us, principal, roles, client, dataset, params, cols, purpose_category, purpose, format, row_count, byte_count, sha256, outcome, error, key_id, prev_mac, mac, ref, sheets"

func (s *Store) init(ctx context.Context) error {
	stmts := []string{
		`CREATE TABLE IF NOT EXISTS ` + s.table + ` (
	seq              BIGINT PRIMARY KEY,
	time_us          BIGINT NOT NULL,
	principal        TEXT NOT NULL,
	roles            TEXT NOT NULL,
	client           TEXT NOT NULL,
	dataset          TEXT NOT NULL,
	params           TEXT NOT NULL,
	cols             TEXT NOT NULL,
	purpose_category TEXT NOT NULL,
	purpose          TEXT NOT NULL,
	format           TEXT NOT NULL,
	row_count        BIGINT NOT NULL,
	byte_count       BIGINT NOT NULL,
	sha256           TEXT NOT NULL,
	outcome          TEXT NOT NULL,
	error            TEXT NOT NULL,
	key_id           TEXT NOT NULL,
	prev_mac         TEXT NOT NULL,
	mac              TEXT NOT NULL,
	ref              BIGINT NOT NULL DEFAULT 0,
	sheets           TEXT NOT NULL DEFAULT ''
)`,
		`CREATE INDEX IF NOT EXISTS ` + s.index + ` ON ` + s.table + ` (time_us)`,
		`CREATE TABLE IF NOT EXISTS ` + s.head + ` (
	id         INTEGER PRIMARY KEY,
	seq        BIGINT NOT NULL,
	mac        TEXT NOT NULL,
	ck_seq     BIGINT NOT NULL,
	ck_mac     TEXT NOT NULL,
	ck_time_us BIGINT NOT NULL,
	ck_key_id  TEXT NOT NULL,
	ck_sig     TEXT NOT NULL
)`,
		`INSERT INTO ` + s.head + ` (id, seq, mac, ck_seq, ck_mac, ck_time_us, ck_key_id, ck_sig)
	VALUES (1, 0, '', 0, '', 0, '', '') ON CONFLICT (id) DO NOTHING`,
	}
	return s.locked(ctx, false, func(q querier) error {
		if s.dialect == PostgreSQL {
			// CREATE … IF NOT EXISTS races between nodes starting together
			if _, err := q.ExecContext(ctx, "SELECT pg_advisory_xact_lock(hashtext($1))", "exportd_audit_init:"+s.table); err != nil {
				return err
			}
		}
		for _, st := range stmts {
			if _, err := q.ExecContext(ctx, st); err != nil {
				return fmt.Errorf("audit: create tables: %w", err)
			}
		}
		if err := s.addColumn(ctx, q, "ref", "BIGINT NOT NULL DEFAULT 0"); err != nil {
			return fmt.Errorf("audit: add the ref column: %w", err)
		}
		if err := s.addColumn(ctx, q, "sheets", "TEXT NOT NULL DEFAULT ''"); err != nil {
			return fmt.Errorf("audit: add the sheets column: %w", err)
		}
		if _, err := q.ExecContext(ctx, `CREATE INDEX IF NOT EXISTS `+s.refIndex+` ON `+s.table+` (ref) WHERE ref <> 0`); err != nil {
			return fmt.Errorf("audit: create tables: %w", err)
		}
		return nil
	})
}

// addColumn adds a column (ref, sheets) to a trail created before it
// existed. The records already there get its default (ref 0, no sheets),
// which their MACs do not cover: they verify as before.
func (s *Store) addColumn(ctx context.Context, q querier, name, decl string) error {
	if s.dialect == PostgreSQL {
		_, err := q.ExecContext(ctx, "ALTER TABLE "+s.table+" ADD COLUMN IF NOT EXISTS "+name+" "+decl)
		return err
	}
	rows, err := q.QueryContext(ctx, "SELECT * FROM "+s.table+" WHERE 1 = 0")
	if err != nil {
		return err
	}
	cols, err := rows.Columns()
	rows.Close()
	if err != nil {
		return err
	}
	for _, c := range cols {
		if strings.EqualFold(c, name) {
			return nil
		}
	}
	_, err = q.ExecContext(ctx, "ALTER TABLE "+s.table+" ADD COLUMN "+name+" "+decl)
	return err
}

// querier is a *sql.Tx or a *sql.Conn.
type querier interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// locked runs fn in a write transaction that appends serialize on: on
// SQLite BEGIN IMMEDIATE (the database's write lock, taken at once, so that
// two appenders never both read the same head); on PostgreSQL a transaction
// in which fn locks the head row (SELECT … FOR UPDATE, see s.forUpdate).
// With readOnly, a consistent read-only snapshot instead.
func (s *Store) locked(ctx context.Context, readOnly bool, fn func(q querier) error) error {
	if s.dialect == PostgreSQL {
		opts := &sql.TxOptions{}
		if readOnly {
			opts = &sql.TxOptions{ReadOnly: true, Isolation: sql.LevelRepeatableRead}
		}
		tx, err := s.db.BeginTx(ctx, opts)
		if err != nil {
			return fmt.Errorf("audit: begin: %w", err)
		}
		if err := fn(pgQuerier{tx}); err != nil {
			tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("audit: commit: %w", err)
		}
		return nil
	}
	conn, err := s.db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("audit: %w", err)
	}
	defer conn.Close()
	begin := "BEGIN IMMEDIATE"
	if readOnly {
		begin = "BEGIN"
	}
	if _, err := conn.ExecContext(ctx, begin); err != nil {
		return fmt.Errorf("audit: begin: %w", err)
	}
	if err := fn(conn); err != nil {
		if _, rerr := conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK"); rerr != nil {
			// never give a connection with an open transaction back to the pool
			conn.Raw(func(any) error { return driver.ErrBadConn })
		}
		return err
	}
	if _, err := conn.ExecContext(context.WithoutCancel(ctx), "COMMIT"); err != nil {
		conn.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		conn.Raw(func(any) error { return driver.ErrBadConn })
		return fmt.Errorf("audit: commit: %w", err)
	}
	return nil
}

// pgQuerier rewrites ? placeholders to PostgreSQL's $n.
type pgQuerier struct{ tx *sql.Tx }

func rebind(q string) string {
	if !strings.Contains(q, "?") {
		return q
	}
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

func (p pgQuerier) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	return p.tx.ExecContext(ctx, rebind(q), args...)
}

func (p pgQuerier) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	return p.tx.QueryContext(ctx, rebind(q), args...)
}

func (p pgQuerier) QueryRowContext(ctx context.Context, q string, args ...any) *sql.Row {
	return p.tx.QueryRowContext(ctx, rebind(q), args...)
}

// headRow is the one row of the head table.
type headRow struct {
	seq int64
	mac MAC
	ck  Checkpoint
}

func (s *Store) readHead(ctx context.Context, q querier, forUpdate bool) (headRow, error) {
	query := "SELECT seq, mac, ck_seq, ck_mac, ck_time_us, ck_key_id, ck_sig FROM " + s.head + " WHERE id = 1"
	if forUpdate && s.dialect == PostgreSQL {
		query += " FOR UPDATE"
	}
	var (
		h                 headRow
		mac, ckMAC, ckSig string
		ckTime            int64
	)
	if err := q.QueryRowContext(ctx, query).Scan(&h.seq, &mac, &h.ck.Seq, &ckMAC, &ckTime, &h.ck.KeyID, &ckSig); err != nil {
		return headRow{}, fmt.Errorf("audit: read head: %w", err)
	}
	h.ck.Before = time.UnixMicro(ckTime).UTC()
	var err error
	if h.mac, err = hex.DecodeString(mac); err != nil {
		return headRow{}, &ChainError{Seq: h.seq, Reason: "head MAC is not hex"}
	}
	if h.ck.MAC, err = hex.DecodeString(ckMAC); err != nil {
		return headRow{}, &ChainError{Seq: h.ck.Seq, Reason: "checkpoint MAC is not hex", Checkpoint: true}
	}
	if h.ck.Sig, err = hex.DecodeString(ckSig); err != nil {
		return headRow{}, &ChainError{Seq: h.ck.Seq, Reason: "checkpoint signature is not hex", Checkpoint: true}
	}
	return h, nil
}

// ErrCompleted is wrapped by the error of an Append whose Ref names a
// started record that already has its outcome record: an append retried
// after it had in fact been stored.
var ErrCompleted = errors.New("audit: the started record already has its outcome")

// ErrNotLogged is wrapped by the error of an Append that stored the record
// but could not write its log line (Options.Log): the record is in the
// trail, with its Seq and MAC set.
var ErrNotLogged = errors.New("audit: record stored but not logged")

// Append adds r to the trail: it fills r.Seq, r.KeyID, r.PrevMAC and r.MAC
// (and r.Time when zero), stores it, and then writes its log line
// (Options.Log; an error there wraps ErrNotLogged). It normalizes r first
// (see Record). Appending is a short write transaction; concurrent
// appends, from this process or other nodes, wait their turn.
//
// A record with a Ref completes the started record ([OutcomeStarted]) of
// that Seq: Append refuses a Ref that names no started record, and one
// whose started record already has its outcome (wrapping ErrCompleted).
// A personal export appends its started record before its first byte and
// its outcome record, with Ref set to the started record's Seq, after the
// last.
func (s *Store) Append(ctx context.Context, r *Record) error {
	if err := r.normalize(); err != nil {
		return err
	}
	keys := s.Keys()
	key, err := keys.key(keys.current)
	if err != nil {
		return err
	}
	r.KeyID = keys.current
	roles, _ := json.Marshal(nonNil(r.Roles))
	cols, _ := json.Marshal(nonNil(r.Columns))
	sheets := ""
	if len(r.Sheets) > 0 {
		b, _ := json.Marshal(r.Sheets)
		sheets = string(b)
	}
	err = s.locked(ctx, false, func(q querier) error {
		h, err := s.readHead(ctx, q, true)
		if err != nil {
			return err
		}
		if r.Ref != 0 {
			if err := s.checkRef(ctx, q, h, r.Ref); err != nil {
				return err
			}
		}
		r.Seq, r.PrevMAC = h.seq+1, h.mac
		r.MAC = computeMAC(key, r, r.PrevMAC)
		if _, err := q.ExecContext(ctx, "INSERT INTO "+s.table+" ("+recordColumns+") VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
			r.Seq, r.Time.UnixMicro(), r.Principal, string(roles), r.Client, r.Dataset, string(r.Params), string(cols),
			r.Purpose.Category, r.Purpose.Text, r.Format, r.Rows, r.Bytes, r.SHA256, string(r.Outcome), r.Error,
			r.KeyID, r.PrevMAC.String(), r.MAC.String(), r.Ref, sheets); err != nil {
			return fmt.Errorf("audit: insert: %w", err)
		}
		if _, err := q.ExecContext(ctx, "UPDATE "+s.head+" SET seq = ?, mac = ? WHERE id = 1", r.Seq, r.MAC.String()); err != nil {
			return fmt.Errorf("audit: update head: %w", err)
		}
		return nil
	})
	if err != nil {
		r.Seq, r.PrevMAC, r.MAC = 0, nil, nil
		return err
	}
	if s.log != nil {
		line := slog.NewRecord(time.Now(), slog.LevelInfo, logMessage, 0)
		line.AddAttrs(slog.Any(logKey, r))
		if err := s.log.Handle(ctx, line); err != nil {
			return fmt.Errorf("%w: record %d: %w", ErrNotLogged, r.Seq, err)
		}
	}
	return nil
}

// checkRef checks, in Append's transaction, that ref names a started
// record that has no outcome record yet.
func (s *Store) checkRef(ctx context.Context, q querier, h headRow, ref int64) error {
	if ref > h.seq {
		return fmt.Errorf("audit: ref %d: no such record (the newest is %d)", ref, h.seq)
	}
	if ref <= h.ck.Seq {
		return nil // pruned meanwhile: nothing left to check it against
	}
	var outcome string
	switch err := q.QueryRowContext(ctx, "SELECT outcome FROM "+s.table+" WHERE seq = ?", ref).Scan(&outcome); {
	case errors.Is(err, sql.ErrNoRows):
		return fmt.Errorf("audit: ref %d: no such record", ref)
	case err != nil:
		return fmt.Errorf("audit: read record %d: %w", ref, err)
	case Outcome(outcome) != OutcomeStarted:
		return fmt.Errorf("audit: ref %d: not a started record (outcome %q)", ref, outcome)
	}
	var done int64
	if err := q.QueryRowContext(ctx, "SELECT count(*) FROM "+s.table+" WHERE ref = ?", ref).Scan(&done); err != nil {
		return fmt.Errorf("audit: read outcome of record %d: %w", ref, err)
	}
	if done > 0 {
		return fmt.Errorf("%w: record %d", ErrCompleted, ref)
	}
	return nil
}

const (
	logMessage = "export audit"
	logKey     = "audit"
)

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// scanRecord reads one row of recordColumns.
func scanRecord(rows *sql.Rows) (Record, error) {
	var (
		r                            Record
		us                           int64
		roles, params, cols, outcome string
		prev, mac                    string
		sheets                       sql.NullString // NULL in a table copied without its defaults
	)
	if err := rows.Scan(&r.Seq, &us, &r.Principal, &roles, &r.Client, &r.Dataset, &params, &cols,
		&r.Purpose.Category, &r.Purpose.Text, &r.Format, &r.Rows, &r.Bytes, &r.SHA256, &outcome, &r.Error,
		&r.KeyID, &prev, &mac, &r.Ref, &sheets); err != nil {
		return Record{}, fmt.Errorf("audit: read record: %w", err)
	}
	r.Time = time.UnixMicro(us).UTC()
	r.Params = json.RawMessage(params)
	r.Outcome = Outcome(outcome)
	var err error
	if err = json.Unmarshal([]byte(roles), &r.Roles); err != nil {
		return r, &ChainError{Seq: r.Seq, Reason: "roles are not a JSON list"}
	}
	if err = json.Unmarshal([]byte(cols), &r.Columns); err != nil {
		return r, &ChainError{Seq: r.Seq, Reason: "columns are not a JSON list"}
	}
	if sheets.String != "" {
		if err = json.Unmarshal([]byte(sheets.String), &r.Sheets); err != nil {
			return r, &ChainError{Seq: r.Seq, Reason: "sheets are not a JSON list"}
		}
	}
	if len(r.Roles) == 0 {
		r.Roles = nil
	}
	if len(r.Columns) == 0 {
		r.Columns = nil
	}
	if r.PrevMAC, err = hex.DecodeString(prev); err != nil {
		return r, &ChainError{Seq: r.Seq, Reason: "prev_mac is not hex"}
	}
	if r.MAC, err = hex.DecodeString(mac); err != nil {
		return r, &ChainError{Seq: r.Seq, Reason: "mac is not hex"}
	}
	return r, nil
}

// Records calls fn for each record whose time is in [from, to), in seq
// order. It does not verify them.
func (s *Store) Records(ctx context.Context, from, to time.Time, fn func(*Record) error) error {
	return s.locked(ctx, true, func(q querier) error {
		return s.records(ctx, q, from, to, fn)
	})
}

func (s *Store) records(ctx context.Context, q querier, from, to time.Time, fn func(*Record) error) error {
	rows, err := q.QueryContext(ctx, "SELECT "+s.columns+" FROM "+s.table+" WHERE time_us >= ? AND time_us < ? ORDER BY seq",
		from.UnixMicro(), to.UnixMicro())
	if err != nil {
		return fmt.Errorf("audit: read records: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		r, err := scanRecord(rows)
		if err != nil {
			return err
		}
		if err := fn(&r); err != nil {
			return err
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("audit: read records: %w", err)
	}
	return nil
}

// Keys returns the keys the store signs and verifies with now.
func (s *Store) Keys() Keys {
	s.keysMu.RLock()
	defer s.keysMu.RUnlock()
	return s.keys
}

// SetKeys replaces the store's keys (a rotation: the newest of keys signs
// the records appended from now on, every one verifies), as a server does
// when it reloads its key file. Records signed with a key no longer among
// keys no longer verify: keep old keys in the file.
func (s *Store) SetKeys(keys Keys) {
	s.keysMu.Lock()
	defer s.keysMu.Unlock()
	s.keys = keys
}
