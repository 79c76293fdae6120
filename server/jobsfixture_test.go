package server_test

import (
	"context"
	"database/sql"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/exportd/exportd/datasets"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/jobs/storage"
	"github.com/exportd/exportd/sqlite"
)

// startJobs runs background jobs of cfg's datasets on src (the
// connection "main"), queued in SQLite and stored under dir, until the
// test ends; log nil discards the manager's log.
func startJobs(t *testing.T, dir string, cfg *exportd.Config, src exportd.Source, log *slog.Logger) *jobs.Manager {
	t.Helper()
	return startJobsOn(t, dir, cfg, src, log, nil, nil)
}

// startJobsOn is startJobs with the result storage seen through wrap
// (nil: as it is) and the personal datasets' attempts recorded in trail
// (nil: none, and such a job fails).
func startJobsOn(t *testing.T, dir string, cfg *exportd.Config, src exportd.Source, log *slog.Logger, wrap func(storage.Storage) storage.Storage, trail *audit.Store) *jobs.Manager {
	t.Helper()
	if log == nil {
		log = discardLogger()
	}
	q, err := jobs.OpenQueue(context.Background(), "sqlite:"+filepath.Join(dir, "jobs.db"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(context.Background(), "file://"+filepath.Join(dir, "results"))
	if err != nil {
		t.Fatal(err)
	}
	var seen storage.Storage = st
	if wrap != nil {
		seen = wrap(st)
	}
	jc := jobs.Config{Datasets: cfg, Sources: map[string]exportd.Source{"main": src}, Queue: q, Storage: seen,
		Links: linkKeys, PollInterval: 50 * time.Millisecond, Logger: log}
	if trail != nil {
		jc.Audit = trail
	}
	m, err := jobs.New(jc)
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Stop(context.Background())
		q.Close()
		st.Close()
	})
	return m
}

// itemsSource creates dir/items.db with an items (id, name) table filled
// by fill (an INSERT … SELECT), writes yaml as dir/datasets.yaml and
// returns the loaded config and a source on the database, closed when
// the test ends.
func itemsSource(t *testing.T, dir, fill, yaml string) (*exportd.Config, exportd.Source) {
	t.Helper()
	db, err := sql.Open("sqlite", filepath.Join(dir, "items.db"))
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{`CREATE TABLE items (id INTEGER PRIMARY KEY, name TEXT NOT NULL)`, fill} {
		if _, err := db.Exec(s); err != nil {
			t.Fatal(err)
		}
	}
	db.Close()
	cfgPath := filepath.Join(dir, "datasets.yaml")
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, err := datasets.LoadConfig(cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	src, err := sqlite.Open(context.Background(), filepath.Join(dir, "items.db"), exportd.SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { src.Close() })
	return cfg, src
}
