package format

import (
	"bytes"
	"encoding/csv"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/exportd/exportd"
)

// FuzzCSVRoundTrip writes arbitrary text as CSV and TSV, reads it back with
// encoding/csv and expects every field unchanged, but for the formula
// guard's leading ' and the \r\n → \n that RFC 4180 readers apply inside
// quoted fields.
func FuzzCSVRoundTrip(f *testing.F) {
	for _, s := range []string{"", "a", "=1+1", `"quoted"`, "a,b", "line1\nline2", "\r\n", "\t-1", "김민준 😀", " lead", "trail "} {
		f.Add(s, "x")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		for _, tc := range []struct {
			f   exportd.Format
			sep rune
		}{{exportd.FormatCSV, ','}, {exportd.FormatTSV, '\t'}} {
			var buf bytes.Buffer
			w, err := New(tc.f, &buf, []exportd.Column{{Name: "a"}, {Name: "b"}}, Options{NoHeader: true})
			if err != nil {
				t.Fatal(err)
			}
			if err := w.WriteRow([]exportd.Value{exportd.String(a), exportd.String(b)}); err != nil {
				t.Fatal(err)
			}
			if err := w.Close(); err != nil {
				t.Fatal(err)
			}
			r := csv.NewReader(&buf)
			r.Comma = tc.sep
			recs, err := r.ReadAll()
			if err != nil {
				t.Fatalf("%s: encoding/csv cannot read %q: %v", tc.f, buf.String(), err)
			}
			want := []string{expectCSV(a), expectCSV(b)}
			if len(recs) != 1 || len(recs[0]) != 2 || recs[0][0] != want[0] || recs[0][1] != want[1] {
				t.Fatalf("%s: wrote %q, read %q, want %q", tc.f, buf.String(), recs, want)
			}
		}
	})
}

func expectCSV(s string) string {
	if s != "" && strings.ContainsRune("=+-@\t\r", rune(s[0])) {
		s = "'" + s
	}
	return strings.ReplaceAll(s, "\r\n", "\n")
}

// FuzzJSONLRoundTrip writes arbitrary text as JSON Lines and reads it back.
func FuzzJSONLRoundTrip(f *testing.F) {
	for _, s := range []string{"", "a", "\x00", "\"\\", "김민준 😀", "\u2028", "\xff"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		var buf bytes.Buffer
		w, _ := New(exportd.FormatJSONL, &buf, []exportd.Column{{Name: "s"}}, Options{})
		if err := w.WriteRow([]exportd.Value{exportd.String(s)}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		if bytes.Count(buf.Bytes(), []byte("\n")) != 1 {
			t.Fatalf("not one line: %q", buf.String())
		}
		var got map[string]string
		if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
			t.Fatalf("%q: %v", buf.String(), err)
		}
		want := strings.ToValidUTF8(s, "\uFFFD")
		if !utf8.ValidString(s) {
			// encoding/json replaces each invalid byte with U+FFFD.
			want = string([]rune(s))
		}
		if got["s"] != want {
			t.Fatalf("got %q, want %q", got["s"], want)
		}
	})
}
