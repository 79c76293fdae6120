package exportd

import (
	"context"
	"errors"
	"time"
)

// Query is one SQL statement with its named parameters, ready to run.
type Query struct {
	// SQL uses named parameters written :name. They are always bound by
	// the source's driver (for MySQL on a plain-text connection, quoted by
	// the source with the server's escaping rules, as the driver's
	// client-side interpolation quotes them), never spliced as given.
	SQL string
	// Params holds the value of each named parameter: nil, string, int64,
	// float64, bool, DateArg (a date parameter), time.Time (a datetime
	// parameter), or a []any of these for a list parameter (which expands
	// to a comma-separated list of placeholders). Each source converts
	// DateArg and time.Time to the form its database compares correctly.
	Params map[string]any
	// Timeout, when positive, is applied as the statement timeout on the
	// database server.
	Timeout time.Duration
}

// ResultColumn describes one column of a query's result as the database
// reports it.
type ResultColumn struct {
	Name         string // column name or alias
	DatabaseType string // the database's own type name, e.g. "NUMERIC", "int8"
	Type         Type   // the Value type rows carry for this column ("" when it varies)
}

// Source runs queries on one database and yields typed rows.
//
// Cancelling the context given to Query cancels the statement on the
// database server, not only on the client.
type Source interface {
	// Query starts q and returns its rows; they are streamed from the
	// server as the caller consumes them.
	Query(ctx context.Context, q Query) (Rows, error)
	// Describe prepares q without running it and returns its result columns.
	Describe(ctx context.Context, q Query) ([]ResultColumn, error)
	// Ping checks that the database answers.
	Ping(ctx context.Context) error
	// Close releases every connection.
	Close() error
}

// Rows is a stream of result rows. It must be closed.
type Rows interface {
	// Columns returns the result's columns.
	Columns() []ResultColumn
	// Next reads the next row into dst, which has len(Columns()) elements,
	// and reports whether there was one. Strings in dst stay valid until
	// the next call to Next.
	Next(dst []Value) bool
	// Err returns the error that ended the stream, if any.
	Err() error
	// Close releases the rows; it is safe to call more than once.
	Close() error
}

// Estimator is implemented by sources that can cheaply estimate how many
// rows a query returns (for example from the planner's estimate).
type Estimator interface {
	EstimateRows(ctx context.Context, q Query) (n int64, ok bool)
}

// SourceOptions configure how a source converts values.
type SourceOptions struct {
	// Location is the zone timestamps with a time zone are converted to
	// before they are written. Nil means UTC.
	Location *time.Location
	// MaxConns, when positive, is the size of PostgreSQL's connection
	// pool unless the URL sets pool_max_conns (pgxpool's default is 4 or
	// the number of CPUs). A server sets it to its export limit, so that no
	// export waits for a connection. MySQL and SQLite pools do not cap
	// their connections.
	MaxConns int
}

// Loc returns the configured location, UTC when none is set.
func (o SourceOptions) Loc() *time.Location {
	if o.Location == nil {
		return time.UTC
	}
	return o.Location
}

// ErrQueryTimeout is returned (wrapped) when a statement exceeds its timeout.
var ErrQueryTimeout = errors.New("statement timeout")

// DateArg is the bound value of a date parameter: a calendar date with no
// zone, held as midnight UTC of that day.
type DateArg struct{ time.Time }

// String returns the date as YYYY-MM-DD.
func (d DateArg) String() string { return d.Format(time.DateOnly) }
