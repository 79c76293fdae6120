package connect_test

import (
	"database/sql"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/connect"
	"github.com/exportd/exportd/sourcetest"
	_ "modernc.org/sqlite"
)

func ping(t *testing.T, url string) {
	t.Helper()
	src, err := connect.Open(t.Context(), url, exportd.SourceOptions{})
	if err != nil {
		t.Fatalf("Open(%q): %v", url, err)
	}
	defer src.Close()
	_, rows, err := sourcetest.Collect(t.Context(), src, exportd.Query{SQL: "SELECT :a + 1 AS x", Params: map[string]any{"a": int64(41)}})
	if err != nil {
		t.Fatalf("%s: %v", url, err)
	}
	if len(rows) != 1 || rows[0][0].Text() != "42" {
		t.Fatalf("%s: got %v, want 42", url, rows)
	}
}

func TestSQLite(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "x.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec("CREATE TABLE t (x INTEGER)"); err != nil {
		t.Fatal(err)
	}
	db.Close()
	ping(t, "sqlite:"+path)
	ping(t, "sqlite://"+path) // sqlite:///abs/path

	t.Chdir(dir)
	ping(t, "sqlite:x.db")
	ping(t, "sqlite://x.db")

	_, err = connect.Open(t.Context(), "sqlite:missing.db", exportd.SourceOptions{})
	if !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: err = %v", err)
	}
	if _, err := os.Stat("missing.db"); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Open created missing.db")
	}
}

func TestBadURL(t *testing.T) {
	for _, url := range []string{"", "nothing", "oracle://scott:tiger@db/orcl", "sqlite:"} {
		_, err := connect.Open(t.Context(), url, exportd.SourceOptions{})
		if err == nil {
			t.Errorf("Open(%q) succeeded", url)
			continue
		}
		if strings.Contains(err.Error(), "tiger") {
			t.Errorf("Open(%q): error shows the password: %v", url, err)
		}
	}
}

func TestServers(t *testing.T) {
	t.Run("postgres", func(t *testing.T) {
		url := sourcetest.IntegrationURL(t, "EXPORTD_POSTGRES_URL")
		ping(t, url)
		ping(t, "postgresql"+strings.TrimPrefix(url, "postgres"))
	})
	t.Run("mysql", func(t *testing.T) {
		ping(t, sourcetest.IntegrationURL(t, "EXPORTD_MYSQL_URL"))
	})
}
