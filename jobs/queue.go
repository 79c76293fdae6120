package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"

	_ "modernc.org/sqlite" // the embedded queue
)

// Queue is where jobs wait and run: River on SQLite (one node, the
// embedded default) or on PostgreSQL (any number of nodes sharing it).
// Open one with [OpenQueue]; a [Manager] uses it, and Close closes it
// after the manager has stopped.
type Queue struct {
	name string // "sqlite" or "postgres"
	// newClient makes the River client of a manager on this queue.
	newClient func(cfg *river.Config) (riverClient, error)
	// exec runs River's own queries (leader, rescue) on the queue's
	// database, in schema.
	exec   riverdriver.Executor
	schema string
	// nodes is the table of the nodes' heartbeats.
	nodes nodeTable
	// runs is the table of the schedules' last ticks (schedule.go).
	runs  runTable
	ping  func(ctx context.Context) error
	close func()
}

// riverClient is the part of *river.Client[TTx] the manager uses, the
// same for every driver (the transaction type is never needed).
type riverClient interface {
	Start(ctx context.Context) error
	Stop(ctx context.Context) error
	Insert(ctx context.Context, args river.JobArgs, opts *river.InsertOpts) (*rivertype.JobInsertResult, error)
	JobGet(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobList(ctx context.Context, params *river.JobListParams) (*river.JobListResult, error)
	JobCancel(ctx context.Context, id int64) (*rivertype.JobRow, error)
	JobUpdate(ctx context.Context, id int64, params *river.JobUpdateParams) (*rivertype.JobRow, error)
	PeriodicJobs() *river.PeriodicJobBundle
}

// OpenQueue opens the queue at rawURL and brings River's schema up to
// date:
//
//	sqlite:PATH or a plain PATH       an SQLite file (created if missing)
//	postgres://… or postgresql://…    a PostgreSQL database
func OpenQueue(ctx context.Context, rawURL string) (*Queue, error) {
	switch {
	case strings.HasPrefix(rawURL, "postgres://"), strings.HasPrefix(rawURL, "postgresql://"):
		return openPostgres(ctx, rawURL)
	case strings.HasPrefix(rawURL, "sqlite:"):
		return openSQLite(ctx, strings.TrimPrefix(strings.TrimPrefix(rawURL, "sqlite:"), "//"))
	case strings.Contains(rawURL, "://"):
		u, _ := url.Parse(rawURL)
		scheme := rawURL
		if u != nil {
			scheme = u.Scheme
		}
		return nil, fmt.Errorf("job queue: unknown scheme %q (want sqlite:PATH or postgres://…)", scheme)
	}
	return openSQLite(ctx, rawURL)
}

// openSQLite opens River on an SQLite file with a pool of its own: WAL and
// a busy timeout (without both, a second pool on the file gets
// SQLITE_BUSY) and one connection.
func openSQLite(ctx context.Context, path string) (*Queue, error) {
	if path == "" {
		return nil, errors.New("job queue: empty SQLite path")
	}
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)&_pragma=synchronous(NORMAL)")
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	db.SetMaxOpenConns(1)
	driver := riversqlite.New(db)
	if err := migrate(ctx, driver, ""); err != nil {
		db.Close()
		return nil, err
	}
	nodes := sqliteNodes{db}
	if err := nodes.create(ctx); err != nil {
		db.Close()
		return nil, err
	}
	runs := sqliteRuns{db}
	if err := runs.create(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return &Queue{
		name:  "sqlite",
		exec:  driver.GetExecutor(),
		nodes: nodes,
		runs:  runs,
		newClient: func(cfg *river.Config) (riverClient, error) {
			// SQLite has no LISTEN/NOTIFY: River polls (cancellations
			// every 2 s, new jobs every FetchPollInterval).
			cfg.PollOnly = true
			return river.NewClient(driver, cfg)
		},
		ping:  db.PingContext,
		close: func() { db.Close() },
	}, nil
}

// openPostgres opens River on PostgreSQL. The URL may name the schema of
// River's tables with river_schema=NAME (created if missing; default: the
// connection's search path), so that several deployments or test runs
// share a database without sharing a queue.
func openPostgres(ctx context.Context, rawURL string) (*Queue, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	q := u.Query()
	schema := q.Get("river_schema")
	q.Del("river_schema")
	u.RawQuery = q.Encode()
	pool, err := pgxpool.New(ctx, u.String())
	if err != nil {
		return nil, fmt.Errorf("job queue: %w", err)
	}
	if schema != "" {
		if _, err := pool.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+pgx.Identifier{schema}.Sanitize()); err != nil {
			pool.Close()
			return nil, fmt.Errorf("job queue: %w", err)
		}
	}
	driver := riverpgxv5.New(pool)
	if err := migrate(ctx, driver, schema); err != nil {
		pool.Close()
		return nil, err
	}
	table := pgx.Identifier{nodeTableName}
	if schema != "" {
		table = pgx.Identifier{schema, nodeTableName}
	}
	nodes := pgNodes{pool, table.Sanitize()}
	if err := nodes.create(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	runTableID := pgx.Identifier{runTableName}
	if schema != "" {
		runTableID = pgx.Identifier{schema, runTableName}
	}
	runs := pgRuns{pool, runTableID.Sanitize()}
	if err := runs.create(ctx); err != nil {
		pool.Close()
		return nil, err
	}
	return &Queue{
		name:   "postgres",
		exec:   driver.GetExecutor(),
		schema: schema,
		nodes:  nodes,
		runs:   runs,
		newClient: func(cfg *river.Config) (riverClient, error) {
			cfg.Schema = schema
			return river.NewClient(driver, cfg)
		},
		ping:  pool.Ping,
		close: pool.Close,
	}, nil
}

func migrate[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], schema string) error {
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Schema: schema})
	if err != nil {
		return fmt.Errorf("job queue: %w", err)
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("job queue: migrate: %w", err)
	}
	return nil
}

// Driver returns "sqlite" or "postgres".
func (q *Queue) Driver() string { return q.name }

// Ping checks that the queue's database answers.
func (q *Queue) Ping(ctx context.Context) error {
	if err := q.ping(ctx); err != nil {
		return fmt.Errorf("job queue: %w", err)
	}
	return nil
}

// Close closes the queue's database pool.
func (q *Queue) Close() { q.close() }

// nodeTableName is the table of the nodes' heartbeats, beside River's.
const nodeTableName = "exportd_node"

// node is a row of the node table: the node running under a River client
// id, since when (its instance's start: a restart makes a new instance),
// and when it was last heard of. Times are the database's, in
// microseconds since 1970.
type node struct {
	ID        string
	Instance  string
	Started   int64
	Heartbeat int64
}

// nodeTable keeps the nodes' heartbeats in the queue database.
type nodeTable interface {
	// register makes instance the live one of node id and returns its
	// start time (the database's clock).
	register(ctx context.Context, id, instance string) (started int64, err error)
	// beat records that instance of node id is alive; false means another
	// instance has registered under id since.
	beat(ctx context.Context, id, instance string) (bool, error)
	// list returns every node.
	list(ctx context.Context) (map[string]node, error)
}

type sqliteNodes struct{ db *sql.DB }

const sqliteNow = "CAST(unixepoch('subsec') * 1000000 AS INTEGER)"

func (n sqliteNodes) create(ctx context.Context) error {
	_, err := n.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS `+nodeTableName+` (
		id TEXT PRIMARY KEY, instance TEXT NOT NULL, started_at INTEGER NOT NULL, heartbeat_at INTEGER NOT NULL)`)
	if err != nil {
		return fmt.Errorf("job queue: node table: %w", err)
	}
	return nil
}

func (n sqliteNodes) register(ctx context.Context, id, instance string) (int64, error) {
	var started int64
	err := n.db.QueryRowContext(ctx, `INSERT INTO `+nodeTableName+` (id, instance, started_at, heartbeat_at)
		VALUES (?1, ?2, `+sqliteNow+`, `+sqliteNow+`)
		ON CONFLICT (id) DO UPDATE SET instance = excluded.instance, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
		RETURNING started_at`, id, instance).Scan(&started)
	if err != nil {
		return 0, fmt.Errorf("register node %s: %w", id, err)
	}
	return started, nil
}

func (n sqliteNodes) beat(ctx context.Context, id, instance string) (bool, error) {
	res, err := n.db.ExecContext(ctx, `UPDATE `+nodeTableName+` SET heartbeat_at = `+sqliteNow+` WHERE id = ?1 AND instance = ?2`, id, instance)
	if err != nil {
		return false, fmt.Errorf("node %s: heartbeat: %w", id, err)
	}
	k, err := res.RowsAffected()
	return k == 1, err
}

func (n sqliteNodes) list(ctx context.Context) (map[string]node, error) {
	rows, err := n.db.QueryContext(ctx, `SELECT id, instance, started_at, heartbeat_at FROM `+nodeTableName)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer rows.Close()
	return scanNodes(rows)
}

// nodeRows are the rows of a query of the node table, from database/sql or
// pgx.
type nodeRows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
}

// scanNodes reads the nodes of rows (id, instance, started_at,
// heartbeat_at).
func scanNodes(rows nodeRows) (map[string]node, error) {
	nodes := map[string]node{}
	for rows.Next() {
		var nd node
		if err := rows.Scan(&nd.ID, &nd.Instance, &nd.Started, &nd.Heartbeat); err != nil {
			return nil, fmt.Errorf("list nodes: %w", err)
		}
		nodes[nd.ID] = nd
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	return nodes, nil
}

type pgNodes struct {
	pool  *pgxpool.Pool
	table string // quoted, with its schema
}

const pgNow = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint"

func (n pgNodes) create(ctx context.Context) error {
	_, err := n.pool.Exec(ctx, `CREATE TABLE IF NOT EXISTS `+n.table+` (
		id text PRIMARY KEY, instance text NOT NULL, started_at bigint NOT NULL, heartbeat_at bigint NOT NULL)`)
	if err != nil {
		return fmt.Errorf("job queue: node table: %w", err)
	}
	return nil
}

func (n pgNodes) register(ctx context.Context, id, instance string) (int64, error) {
	var started int64
	err := n.pool.QueryRow(ctx, `INSERT INTO `+n.table+` (id, instance, started_at, heartbeat_at)
		VALUES ($1, $2, `+pgNow+`, `+pgNow+`)
		ON CONFLICT (id) DO UPDATE SET instance = excluded.instance, started_at = excluded.started_at, heartbeat_at = excluded.heartbeat_at
		RETURNING started_at`, id, instance).Scan(&started)
	if err != nil {
		return 0, fmt.Errorf("register node %s: %w", id, err)
	}
	return started, nil
}

func (n pgNodes) beat(ctx context.Context, id, instance string) (bool, error) {
	tag, err := n.pool.Exec(ctx, `UPDATE `+n.table+` SET heartbeat_at = `+pgNow+` WHERE id = $1 AND instance = $2`, id, instance)
	if err != nil {
		return false, fmt.Errorf("node %s: heartbeat: %w", id, err)
	}
	return tag.RowsAffected() == 1, nil
}

func (n pgNodes) list(ctx context.Context) (map[string]node, error) {
	rows, err := n.pool.Query(ctx, `SELECT id, instance, started_at, heartbeat_at FROM `+n.table)
	if err != nil {
		return nil, fmt.Errorf("list nodes: %w", err)
	}
	defer rows.Close()
	return scanNodes(rows)
}
