package mask_test

import (
	"context"

	"github.com/exportd/exportd"
)

// staticSource yields fixed rows.
type staticSource struct{ rows [][]exportd.Value }

func (s staticSource) Query(ctx context.Context, q exportd.Query) (exportd.Rows, error) {
	return &staticRows{rows: s.rows}, nil
}
func (s staticSource) Describe(ctx context.Context, q exportd.Query) ([]exportd.ResultColumn, error) {
	return (&staticRows{rows: s.rows}).Columns(), nil
}
func (s staticSource) Ping(ctx context.Context) error { return nil }
func (s staticSource) Close() error                   { return nil }

type staticRows struct {
	rows [][]exportd.Value
	i    int
}

func (r *staticRows) Columns() []exportd.ResultColumn {
	cols := make([]exportd.ResultColumn, len(r.rows[0]))
	for i := range cols {
		cols[i].Name = string(rune('a' + i))
	}
	return cols
}

func (r *staticRows) Next(dst []exportd.Value) bool {
	if r.i >= len(r.rows) {
		return false
	}
	copy(dst, r.rows[r.i])
	r.i++
	return true
}
func (r *staticRows) Err() error   { return nil }
func (r *staticRows) Close() error { return nil }
