package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"
)

// The source reads DATE, DATETIME and TIMESTAMP text itself; it must
// turn exactly the text into a time that modernc.org/sqlite's driver turns
// into one, and into the same time.
func TestDriverTimeParity(t *testing.T) {
	samples := []string{
		"2024-01-02 03:04:05", "2024-01-02 03:04:05.123", "2024-01-02T03:04:05", "2024-01-02 03:04",
		"2024-01-02T03:04", "2024-01-02", "2024-01-02 03:04:05Z", "2024-01-02T03:04:05Z",
		"2024-01-02T03:04:05+00:00", "2024-06-30 23:59:59-05:00", "2024-01-02 03:04:05.999999999+09:00",
		"2024-01-02 03:04:05 +0900 KST", "2024-01-02 03:04:05.5 +0000 UTC m=+0.000000001",
		"2000-02-29 00:00:00", "1900-02-29 00:00:00", "2023-02-29 12:00:00", "2024-04-31 00:00:00",
		"2024-13-01 00:00:00", "2024-00-10 00:00:00", "2024-01-00 00:00:00", "2024-01-02 24:00:00",
		"2024-01-02 23:60:00", "2024-01-02 23:59:60", "0000-01-01 00:00:00", "9999-12-31 23:59:59",
		"2024-1-2 03:04:05", "2024-01-02 3:04:05", "+024-01-02 03:04:05", "2024-01-02 03:04:0x",
		"", "not a date", "2024-01-02  03:04:05", " 2024-01-02 03:04:05",
	}
	path := filepath.Join(t.TempDir(), "t.db")
	db, err := sql.Open("sqlite", path)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec("CREATE TABLE t (v DATETIME)"); err != nil {
		t.Fatal(err)
	}
	for _, s := range samples {
		if _, err := db.Exec("INSERT INTO t VALUES (?)", s); err != nil {
			t.Fatal(err)
		}
	}
	rows, err := db.Query("SELECT v FROM t ORDER BY rowid")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	i := 0
	for ; rows.Next(); i++ {
		var v any
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		s := samples[i]
		got, ok := parseDriverTime(s)
		switch want := v.(type) {
		case time.Time:
			if !ok || got.String() != want.String() {
				t.Errorf("%q: got %v, %v; the driver reads %v", s, got, ok, want)
			}
		default:
			if ok {
				t.Errorf("%q: got %v; the driver leaves it text (%T %v)", s, got, v, v)
			}
		}
	}
	if err := rows.Err(); err != nil || i != len(samples) {
		t.Fatalf("read %d of %d samples: %v", i, len(samples), err)
	}
}
