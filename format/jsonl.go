package format

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/exportd/exportd"
)

// jsonl writes JSON Lines: one object per row, keyed by column name.
// Integers are JSON numbers with every digit; decimals are JSON strings so
// that no reader rounds them; NaN and ±Inf are null; dates are
// "YYYY-MM-DD" and timestamps "YYYY-MM-DDTHH:MM:SS[.fff]" in the zone the
// source converted them to.
//
// With keep-alives (Options.KeepAlive), a keep-alive writes a space, and
// the line feed that ends a row is written only before the next row or
// by Close: a row's line is then `{…}   ` and the file's bytes are those
// of the plain writer plus the spaces.
type jsonl struct {
	w         *bufio.Writer
	keys      [][]byte // `"name":` per column, the first with '{', the others with ','
	buf       []byte
	err       error
	keepAlive bool // KeepAlive sends a space; line feeds are held back
	held      bool // a row's line feed is still to be written
}

var _ exportd.KeepAliver = (*jsonl)(nil)

func newJSONL(w io.Writer, cols []exportd.Column, keepAlive bool) *jsonl {
	j := &jsonl{w: bufio.NewWriterSize(w, 64<<10), keys: make([][]byte, len(cols)), keepAlive: keepAlive}
	for i, c := range cols {
		k := []byte{','}
		if i == 0 {
			k[0] = '{'
		}
		k = appendJSONString(k, c.Name)
		j.keys[i] = append(k, ':')
	}
	return j
}

func (j *jsonl) WriteRow(row []exportd.Value) error {
	if j.err != nil {
		return j.err
	}
	b := j.buf[:0]
	if j.held {
		b = append(b, '\n')
	}
	for i, v := range row {
		b = append(b, j.keys[i]...)
		switch v.Kind {
		case exportd.KindNull:
			b = append(b, "null"...)
		case exportd.KindInt:
			b = strconv.AppendInt(b, v.I, 10)
		case exportd.KindFloat:
			if math.IsNaN(v.F) || math.IsInf(v.F, 0) {
				b = append(b, "null"...)
			} else {
				b = strconv.AppendFloat(b, v.F, 'g', -1, 64)
			}
		case exportd.KindBool:
			b = strconv.AppendBool(b, v.I != 0)
		case exportd.KindString, exportd.KindDecimal:
			b = appendJSONString(b, v.S)
		case exportd.KindDate:
			b = append(b, '"')
			b = v.T.AppendFormat(b, time.DateOnly)
			b = append(b, '"')
		case exportd.KindDateTime:
			b = append(b, '"')
			b = v.T.AppendFormat(b, "2006-01-02T15:04:05.999999999")
			b = append(b, '"')
		}
	}
	if len(row) == 0 {
		b = append(b, '{')
	}
	b = append(b, '}')
	if j.keepAlive {
		j.held = true
	} else {
		b = append(b, '\n')
	}
	j.buf = b
	if _, err := j.w.Write(b); err != nil {
		j.err = fmt.Errorf("write row: %w", err)
	}
	return j.err
}

// appendJSONString appends s as a JSON string; invalid UTF-8 becomes U+FFFD.
func appendJSONString(b []byte, s string) []byte {
	simple := true
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c == '"' || c == '\\' || c >= utf8.RuneSelf {
			simple = false
			break
		}
	}
	if simple {
		b = append(b, '"')
		b = append(b, s...)
		return append(b, '"')
	}
	q, _ := json.Marshal(s) // cannot fail for a string
	return append(b, q...)
}

func (j *jsonl) Flush() error {
	if j.err != nil {
		return j.err
	}
	if err := j.w.Flush(); err != nil {
		j.err = fmt.Errorf("flush: %w", err)
	}
	return j.err
}

// KeepAlive flushes and, with Options.KeepAlive, sends a space first:
// after the last row's closing brace (its line feed is held back), or at
// the start of the first line.
func (j *jsonl) KeepAlive() error {
	if j.err == nil && j.keepAlive {
		if err := j.w.WriteByte(' '); err != nil {
			j.err = fmt.Errorf("keep-alive: %w", err)
		}
	}
	return j.Flush()
}

func (j *jsonl) Close() error {
	if j.err == nil && j.held {
		j.held = false
		if err := j.w.WriteByte('\n'); err != nil {
			j.err = fmt.Errorf("write row: %w", err)
		}
	}
	return j.Flush()
}

// Abort drops what is buffered; later writes fail.
func (j *jsonl) Abort() {
	if j.err == nil {
		j.err = errAborted
	}
	j.w.Reset(io.Discard)
}
