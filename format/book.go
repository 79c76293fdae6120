package format

import (
	"archive/zip"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/klauspost/compress/flate"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/xlsx"
)

// Book writes the sheets of one file one after the other, for an export
// of several sheets (exportd.Export.Sheets): the sheets of one XLSX
// workbook, or, for CSV, TSV and JSON Lines, a ZIP archive of one file
// per sheet ("name.csv"), deflated and streamed like a workbook.
//
// [Book.Sheet] starts the next sheet and returns its writer: that
// writer's Close ends the sheet, and the Close of the last sheet's
// writer ends the file. Abort on any of them gives the whole file up.
type Book struct {
	f     exportd.Format
	opts  Options
	n     int // sheets the file will have
	begun int
	x     *xlsx.Writer
	z     *zip.Writer
	fw    *flate.Writer // the ZIP entry's compressor
	cur   exportd.RowWriter
	err   error
	names map[string]bool // the ZIP's entry names, lower-cased
}

// ErrSheetCount is returned by [Book.Sheet] past the number of sheets
// the book was made for.
var ErrSheetCount = errors.New("more sheets than the book was made for")

// NewBook returns a book of n sheets in format f on w.
func NewBook(f exportd.Format, w io.Writer, n int, opts Options) (*Book, error) {
	if _, err := exportd.ParseFormat(string(f)); err != nil {
		return nil, fmt.Errorf("new book: %w", err)
	}
	if n < 1 {
		return nil, errors.New("new book: no sheets")
	}
	b := &Book{f: f, opts: opts, n: n}
	if f == exportd.FormatXLSX {
		b.x = newXLSXWriter(w, opts)
		return b, nil
	}
	level := opts.Level
	if level == 0 {
		level = 1
	}
	b.z = zip.NewWriter(w)
	b.z.RegisterCompressor(zip.Deflate, func(out io.Writer) (io.WriteCloser, error) {
		fw, err := flate.NewWriter(out, level)
		b.fw = fw
		return fw, err
	})
	return b, nil
}

// BookContentType is the MIME type of a book of format f: f's for XLSX, a
// ZIP archive's for the others.
func BookContentType(f exportd.Format) string {
	if f == exportd.FormatXLSX {
		return f.ContentType()
	}
	return "application/zip"
}

// Sheet ends the current sheet, if any, and starts the next, named name,
// with the given columns: a worksheet, or the file name.ext of the ZIP
// archive. Its header leaves at the next flush.
func (b *Book) Sheet(name string, cols []exportd.Column) (exportd.RowWriter, error) {
	if b.err != nil {
		return nil, b.err
	}
	if b.begun == b.n {
		return nil, ErrSheetCount
	}
	if len(cols) == 0 {
		return nil, fmt.Errorf("sheet %s: no columns", name)
	}
	b.begun++
	if b.x != nil {
		if err := newSheet(b.x, name, cols, b.opts); err != nil {
			return nil, b.fail(err)
		}
		return &bookSheet{b: b, inner: &xlsxWriter{w: b.x, cells: make([]xlsx.Cell, len(cols))}}, nil
	}
	hdr := &zip.FileHeader{Name: b.entryName(name), Method: zip.Deflate, Modified: b.modified()}
	ew, err := b.z.CreateHeader(hdr)
	if err != nil {
		return nil, b.fail(fmt.Errorf("zip entry %s: %w", hdr.Name, err))
	}
	opts := b.opts
	opts.KeepAlive = false // the compressor's flush sends bytes
	inner, err := New(b.f, ew, cols, opts)
	if err != nil {
		return nil, b.fail(err)
	}
	b.cur = inner
	return &bookSheet{b: b, inner: inner}, nil
}

// entryName returns the ZIP entry of sheet name: its name with the
// characters no file system takes replaced (a sheet may be called
// "a<b", which Windows cannot unpack), made unique without case.
func (b *Book) entryName(name string) string {
	if b.names == nil {
		b.names = map[string]bool{}
	}
	base := exportd.SanitizeFileName(name)
	entry := base + "." + string(b.f)
	for n := 2; b.names[strings.ToLower(entry)]; n++ {
		entry = base + " (" + strconv.Itoa(n) + ")." + string(b.f)
	}
	b.names[strings.ToLower(entry)] = true
	return entry
}

func (b *Book) modified() time.Time {
	if t := b.opts.Properties.Created; !t.IsZero() {
		return t
	}
	return time.Now()
}

func (b *Book) fail(err error) error {
	if b.err == nil {
		b.err = err
	}
	return b.err
}

// flush pushes what the current ZIP entry's writer holds through its
// compressor (an empty deflate block when it holds nothing, which changes
// nothing the entry says) and the archive's buffer.
func (b *Book) flush() error {
	if b.x != nil {
		return b.x.Flush()
	}
	if b.fw != nil {
		if err := b.fw.Flush(); err != nil {
			return b.fail(fmt.Errorf("flush: %w", err))
		}
	}
	if err := b.z.Flush(); err != nil {
		return b.fail(fmt.Errorf("flush: %w", err))
	}
	return nil
}

func (b *Book) abort() {
	b.fail(errAborted)
	if b.x != nil {
		b.x.Abort()
	}
	if b.cur != nil {
		b.cur.Abort()
	}
	// The ZIP writer is left without its central directory: no reader
	// takes the archive for a whole one.
}

// bookSheet is the writer of one sheet of a Book.
type bookSheet struct {
	b      *Book
	inner  exportd.RowWriter
	closed bool
}

func (s *bookSheet) WriteRow(row []exportd.Value) error {
	if s.b.err != nil {
		return s.b.err
	}
	return s.inner.WriteRow(row)
}

func (s *bookSheet) Flush() error {
	if s.b.err != nil {
		return s.b.err
	}
	if s.b.x == nil && !s.closed {
		if err := s.inner.Flush(); err != nil {
			return s.b.fail(err)
		}
	}
	return s.b.flush()
}

// Close ends the sheet; the last sheet's ends the file.
func (s *bookSheet) Close() error {
	b := s.b
	if b.err != nil {
		return b.err
	}
	if s.closed {
		return nil
	}
	s.closed = true
	last := b.begun == b.n
	if b.x != nil {
		if !last {
			return nil // the sheet ends when the next begins (its totals row)
		}
		if err := b.x.Close(); err != nil {
			return b.fail(err)
		}
		return nil
	}
	if err := s.inner.Close(); err != nil {
		return b.fail(err)
	}
	b.cur = nil
	if !last {
		return nil
	}
	if err := b.z.Close(); err != nil {
		return b.fail(fmt.Errorf("zip: %w", err))
	}
	return nil
}

func (s *bookSheet) Abort() { s.b.abort() }

// A bookSheet has no Unwrap: a keep-alive must go through its Flush,
// which flushes the compressor too, not through a JSON Lines writer's
// KeepAlive, whose space would wait in the ZIP entry.

// BookWriters returns the writer makers of a book of the named sheets in
// format f, one per sheet in order, for exportd.ExportSheet.NewWriter:
// the first call makes the book on the io.Writer it is given, and each
// starts its sheet.
func BookWriters(f exportd.Format, names []string, opts Options) []func(io.Writer, []exportd.Column) (exportd.RowWriter, error) {
	var b *Book
	out := make([]func(io.Writer, []exportd.Column) (exportd.RowWriter, error), len(names))
	for i, name := range names {
		out[i] = func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
			if b == nil {
				var err error
				if b, err = NewBook(f, w, len(names), opts); err != nil {
					return nil, err
				}
			}
			return b.Sheet(name, cols)
		}
	}
	return out
}
