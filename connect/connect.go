package connect

import (
	"context"
	"fmt"
	"strings"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/mysql"
	"github.com/exportd/exportd/postgres"
	"github.com/exportd/exportd/sqlite"
)

// Open opens the source a database URL names:
//
//	postgres://user:pass@host:5432/db?sslmode=disable   (also postgresql://)
//	mysql://user:pass@host:3306/db?tls=true
//	sqlite:PATH, sqlite://PATH, sqlite:///ABSOLUTE/PATH
//
// A SQLite file must exist: Open creates nothing.
func Open(ctx context.Context, url string, opts exportd.SourceOptions) (exportd.Source, error) {
	scheme, rest, ok := strings.Cut(url, ":")
	if !ok {
		return nil, fmt.Errorf("database url has no scheme (want postgres://, mysql:// or sqlite:PATH)")
	}
	switch strings.ToLower(scheme) {
	case "postgres", "postgresql":
		return postgres.Open(ctx, url, opts)
	case "mysql":
		return mysql.Open(ctx, url, opts)
	case "sqlite", "sqlite3":
		path := strings.TrimPrefix(rest, "//")
		if path == "" {
			return nil, fmt.Errorf("sqlite url %q has no path", url)
		}
		return sqlite.Open(ctx, path, opts)
	}
	return nil, fmt.Errorf("unsupported database url scheme %q (want postgres://, mysql:// or sqlite:PATH)", scheme)
}
