package format

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	"github.com/exportd/exportd"
)

// A JSON Lines stream with keep-alives before the first row, between rows
// and after the last one: every keep-alive sends bytes at once, every line
// is still one JSON value that a strict line-by-line reader accepts, and
// the values are those of the plain file.
func TestJSONLKeepAlive(t *testing.T) {
	plain := writeAll(t, exportd.FormatJSONL, Options{})
	if got := writeAll(t, exportd.FormatJSONL, Options{KeepAlive: true}); !bytes.Equal(got, plain) {
		t.Fatalf("without a keep-alive the file differs from the plain one:\n got %q\nwant %q", got, plain)
	}

	var buf bytes.Buffer
	w, err := New(exportd.FormatJSONL, &buf, testCols, Options{KeepAlive: true})
	if err != nil {
		t.Fatal(err)
	}
	ka, ok := w.(exportd.KeepAliver)
	if !ok {
		t.Fatal("the JSON Lines writer is not a KeepAliver")
	}
	keepAlive := func(times int) {
		t.Helper()
		for range times {
			n := buf.Len()
			if err := ka.KeepAlive(); err != nil {
				t.Fatal(err)
			}
			if buf.Len() <= n {
				t.Fatalf("a keep-alive sent nothing (%d bytes so far)", n)
			}
		}
	}
	keepAlive(3) // the database thinks before its first row
	for i, r := range testRows() {
		if err := w.WriteRow(r); err != nil {
			t.Fatal(err)
		}
		keepAlive(i % 3) // … and between rows, and after the last
	}
	keepAlive(2)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	out := buf.String()
	if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != len(testRows()) {
		t.Fatalf("want %d lines each ending in a line feed:\n%q", len(testRows()), out)
	}
	if strings.Count(out, " ") <= strings.Count(string(plain), " ") {
		t.Fatalf("no keep-alive space in the file:\n%q", out)
	}
	decode := func(file string) []map[string]any {
		var objs []map[string]any
		for _, l := range strings.SplitAfter(strings.TrimSuffix(file, "\n"), "\n") {
			var m map[string]any
			// json.Unmarshal takes exactly one value with whitespace around
			// it, as Python's json.loads does with each line.
			if err := json.Unmarshal([]byte(l), &m); err != nil {
				t.Fatalf("line %q: %v", l, err)
			}
			objs = append(objs, m)
		}
		return objs
	}
	if got, want := decode(out), decode(string(plain)); !reflect.DeepEqual(got, want) {
		t.Fatalf("values differ:\n got %v\nwant %v", got, want)
	}
}

// Without Options.KeepAlive, a keep-alive only flushes: a job's or the
// command line's file never holds a keep-alive space.
func TestJSONLKeepAliveOff(t *testing.T) {
	var buf bytes.Buffer
	w, err := New(exportd.FormatJSONL, &buf, testCols, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRow(testRows()[0]); err != nil {
		t.Fatal(err)
	}
	if err := w.(exportd.KeepAliver).KeepAlive(); err != nil {
		t.Fatal(err)
	}
	n := buf.Len()
	if err := w.(exportd.KeepAliver).KeepAlive(); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if buf.Len() != n || !bytes.Equal(buf.Bytes(), writeOne(t, testRows()[0])) {
		t.Fatalf("got %q", buf.String())
	}
}

func writeOne(t *testing.T, row []exportd.Value) []byte {
	t.Helper()
	var buf bytes.Buffer
	w, err := New(exportd.FormatJSONL, &buf, testCols, Options{})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.WriteRow(row); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}
