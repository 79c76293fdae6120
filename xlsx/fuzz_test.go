package xlsx

import (
	"bytes"
	"strings"
	"testing"
	"unicode/utf16"
)

// sanitise is the documented transformation of a string cell: each byte of invalid
// UTF-8 becomes U+FFFD, characters XML 1.0 forbids are removed, and the
// result is cut to MaxCellChars UTF-16 code units without splitting a
// surrogate pair.
func sanitise(s string) (string, bool) {
	var b strings.Builder
	units := 0
	for _, r := range s { // each byte of invalid UTF-8 yields U+FFFD
		if !xmlChar(r) {
			continue
		}
		n := utf16.RuneLen(r)
		if units+n > MaxCellChars {
			return b.String(), true
		}
		units += n
		b.WriteRune(r)
	}
	return b.String(), false
}

func FuzzRoundTrip(f *testing.F) {
	for _, c := range corpus() {
		if c.cell.Type == CellString || c.cell.Type == CellDecimal {
			f.Add(c.cell.S, "b")
		}
	}
	f.Add("_x005F_x0041_", "  ")
	f.Add("a\r\nb", "\xed\xa0\x80") // an encoded surrogate: invalid UTF-8
	f.Fuzz(func(t *testing.T, a, b string) {
		var buf bytes.Buffer
		w := NewWriter(&buf)
		w.SingleThread = true
		if err := w.NewSheet("F", []Column{{Header: "a"}, {Header: "b"}}); err != nil {
			t.Fatal(err)
		}
		if err := w.Write([]Cell{String(a), String(b)}); err != nil {
			t.Fatal(err)
		}
		if err := w.Close(); err != nil {
			t.Fatal(err)
		}
		_, sheets := readExcelize(t, buf.Bytes())
		cut := 0
		for i, s := range []string{a, b} {
			want, truncated := sanitise(s)
			if truncated {
				cut++
			}
			g := cellAt(sheets["F"], 1, i)
			if want == "" && s == "" {
				if g.kind != 0 {
					t.Errorf("column %d: empty string read back as %+v", i, g)
				}
				continue
			}
			if g.text != want || (want != "" && g.kind != 's') {
				t.Errorf("column %d: %q read back as %q (kind %q), want %q", i, s, g.text, g.kind, want)
			}
		}
		if w.Truncated() != cut {
			t.Errorf("Truncated() = %d, want %d", w.Truncated(), cut)
		}
	})
}
