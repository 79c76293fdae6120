package jobs

import (
	"strings"
	"testing"
)

func TestPublicError(t *testing.T) {
	for in, want := range map[string]string{
		"open /var/lib/exportd/results/7/1.xlsx: permission denied":    "open [path]: permission denied",
		`sqlite: open file:///srv/data/items.db?mode=ro: no such file`: "sqlite: open [path]?mode=ro: no such file",
		`write C:\exportd\results\1.csv: disk full`:                    "write [path]: disk full",
		"parameter \"from\": not a date (want YYYY-MM-DD)":             "parameter \"from\": not a date (want YYYY-MM-DD)",
		"dataset items: 10/20 rows, 1.5 MB/s":                          "dataset items: 10/20 rows, 1.5 MB/s",
	} {
		got := publicError(in)
		if got != want {
			t.Errorf("publicError(%q) = %q, want %q", in, got, want)
		}
		if strings.Contains(got, "/var/") || strings.Contains(got, "/srv/") || strings.Contains(got, `C:\`) {
			t.Errorf("%q still names a path", got)
		}
	}
}
