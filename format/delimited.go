package format

import (
	"bufio"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"time"

	"github.com/exportd/exportd"
)

// delimited writes CSV (RFC 4180) or TSV. Fields are quoted when they hold
// the separator, a quote, CR or LF; an empty string is written as "" so that
// it differs from NULL, which is an empty field.
type delimited struct {
	w        *bufio.Writer
	sep      byte
	eol      string
	guard    bool
	decimals []int     // fixed decimals for floats per column, -1 = shortest
	quote    [256]bool // the bytes that make a field quoted: the separator, '"', CR, LF
	buf      []byte
	err      error
}

func newDelimited(w io.Writer, cols []exportd.Column, sep byte, opts Options) (*delimited, error) {
	if opts.BOM && opts.SepLine {
		return nil, ErrBOMWithSepLine
	}
	d := &delimited{
		w:        bufio.NewWriterSize(w, 64<<10),
		sep:      sep,
		eol:      "\n",
		guard:    !opts.NoFormulaGuard,
		decimals: make([]int, len(cols)),
	}
	if opts.CRLF {
		d.eol = "\r\n"
	}
	for _, c := range []byte{sep, '"', '\n', '\r'} {
		d.quote[c] = true
	}
	for i, c := range cols {
		d.decimals[i] = fixedDecimals(c.Format)
	}
	if opts.BOM {
		d.buf = append(d.buf, "\xEF\xBB\xBF"...)
	}
	if opts.SepLine {
		d.buf = append(d.buf, "sep="...)
		d.buf = append(d.buf, sep)
		d.buf = append(d.buf, d.eol...)
	}
	if !opts.NoHeader {
		for i, c := range cols {
			if i > 0 {
				d.buf = append(d.buf, sep)
			}
			d.buf = d.appendText(d.buf, c.Label())
		}
		d.buf = append(d.buf, d.eol...)
	}
	if _, err := d.w.Write(d.buf); err != nil {
		return nil, fmt.Errorf("write header: %w", err)
	}
	return d, nil
}

// fixedDecimals returns the number of decimals a number format such as
// "#,##0.00" asks for, or -1 when it asks for none in particular.
func fixedDecimals(numFmt string) int {
	dot := strings.IndexByte(numFmt, '.')
	if dot < 0 {
		return -1
	}
	n := 0
	for _, c := range numFmt[dot+1:] {
		if c != '0' {
			break
		}
		n++
	}
	if n == 0 {
		return -1
	}
	return n
}

func (d *delimited) WriteRow(row []exportd.Value) error {
	if d.err != nil {
		return d.err
	}
	b := d.buf[:0]
	for i, v := range row {
		if i > 0 {
			b = append(b, d.sep)
		}
		switch v.Kind {
		case exportd.KindNull:
		case exportd.KindString:
			if v.S == "" {
				b = append(b, `""`...)
				continue
			}
			if d.guard && needsGuard(v.S) {
				b = d.appendQuoted(b, "'", v.S)
				continue
			}
			b = d.appendText(b, v.S)
		case exportd.KindFloat:
			if i < len(d.decimals) && d.decimals[i] >= 0 && !math.IsNaN(v.F) && !math.IsInf(v.F, 0) {
				b = strconv.AppendFloat(b, v.F, 'f', d.decimals[i], 64)
			} else {
				b = v.AppendText(b)
			}
		case exportd.KindDateTime:
			b = appendDateTime(b, v.T)
		default:
			b = v.AppendText(b)
		}
	}
	b = append(b, d.eol...)
	d.buf = b
	if _, err := d.w.Write(b); err != nil {
		d.err = fmt.Errorf("write row: %w", err)
	}
	return d.err
}

// appendDateTime writes a timestamp as YYYY-MM-DD HH:MM:SS with a
// fraction only when there is one (its trailing zeros dropped), as
// t.AppendFormat(b, "2006-01-02 15:04:05.999999999") does, without
// interpreting a layout for every value.
func appendDateTime(b []byte, t time.Time) []byte {
	y, mo, d := t.Date()
	if y < 0 || y > 9999 {
		return t.AppendFormat(b, "2006-01-02 15:04:05.999999999")
	}
	h, mi, sec := t.Clock()
	b = append(b, byte('0'+y/1000), byte('0'+y/100%10), byte('0'+y/10%10), byte('0'+y%10), '-',
		byte('0'+mo/10), byte('0'+mo%10), '-', byte('0'+d/10), byte('0'+d%10), ' ',
		byte('0'+h/10), byte('0'+h%10), ':', byte('0'+mi/10), byte('0'+mi%10), ':',
		byte('0'+sec/10), byte('0'+sec%10))
	ns := t.Nanosecond()
	if ns == 0 {
		return b
	}
	var frac [10]byte
	frac[0] = '.'
	for i := 9; i > 0; i-- {
		frac[i] = byte('0' + ns%10)
		ns /= 10
	}
	n := 10
	for frac[n-1] == '0' {
		n--
	}
	return append(b, frac[:n]...)
}

// needsGuard reports whether a spreadsheet would read s as a formula.
func needsGuard(s string) bool {
	switch s[0] {
	case '=', '+', '-', '@', '\t', '\r':
		return true
	}
	return false
}

func (d *delimited) appendText(b []byte, s string) []byte {
	return d.appendQuoted(b, "", s)
}

// appendQuoted appends prefix+s as one field, quoted when needed.
func (d *delimited) appendQuoted(b []byte, prefix, s string) []byte {
	if !d.needsQuotes(s) {
		b = append(b, prefix...)
		return append(b, s...)
	}
	b = append(b, '"')
	b = append(b, prefix...)
	for {
		i := strings.IndexByte(s, '"')
		if i < 0 {
			break
		}
		b = append(b, s[:i+1]...)
		b = append(b, '"')
		s = s[i+1:]
	}
	b = append(b, s...)
	return append(b, '"')
}

func (d *delimited) needsQuotes(s string) bool {
	for i := 0; i < len(s); i++ {
		if d.quote[s[i]] {
			return true
		}
	}
	return false
}

func (d *delimited) Flush() error {
	if d.err != nil {
		return d.err
	}
	if err := d.w.Flush(); err != nil {
		d.err = fmt.Errorf("flush: %w", err)
	}
	return d.err
}

func (d *delimited) Close() error { return d.Flush() }

// Abort drops what is buffered; later writes fail.
func (d *delimited) Abort() {
	if d.err == nil {
		d.err = errAborted
	}
	d.w.Reset(io.Discard)
}
