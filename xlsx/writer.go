package xlsx

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"strconv"
	"strings"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Limits of an Excel worksheet.
const (
	MaxSheetRows   = 1_048_576 // rows per sheet, header included
	MaxColumns     = 16_384    // columns per sheet (A..XFD)
	MaxCellChars   = 32_767    // characters (UTF-16 code units) per cell
	MaxSheetName   = 31        // characters (UTF-16 code units) per sheet name
	DefaultMaxRows = MaxSheetRows - 1
	defaultLevel   = 1
)

// Default number formats of date cells whose column has no NumFmt.
const (
	DateFormat     = "yyyy-mm-dd"
	DateTimeFormat = "yyyy-mm-dd hh:mm:ss"
)

// Errors returned by a Writer.
var (
	ErrSheetName      = errors.New("xlsx: invalid sheet name")
	ErrClosed         = errors.New("xlsx: writer closed")
	ErrAborted        = errors.New("xlsx: writer aborted")
	ErrTooManyColumns = errors.New("xlsx: more than 16,384 columns")
)

// Column describes one column of a sheet.
type Column struct {
	Header string  // header text; the sheet gets a bold header row when any column has one
	Width  float64 // width in characters; 0 leaves Excel's default
	NumFmt string  // number format of numeric and date cells, e.g. "#,##0.00" or "yyyy-mm-dd hh:mm"
	// Total asks for a totals row at the end of the sheet (after the
	// last of its rollover sheets) with this column's total; see [Total].
	Total Total
}

// Properties are the document properties (docProps/core.xml and app.xml).
type Properties struct {
	Title, Subject, Creator, Description, Keywords, Category, Company string
	Created                                                           time.Time // zero means the time of the first NewSheet
}

// HeaderFooter is what Excel prints at the top and the bottom of each page
// of a sheet (ECMA-376 Part 1, §18.3.1.46 headerFooter). The strings use
// Excel's header codes: &L, &C and &R start the left, centre and right
// sections, &P is the page number, &N the number of pages, &D the date;
// a literal ampersand is && (see [HeaderFooterText]). Excel accepts up to
// 255 characters in each.
type HeaderFooter struct {
	OddHeader, OddFooter string
}

// HeaderFooterText returns s with its ampersands doubled, for literal text
// in a [HeaderFooter] string.
func HeaderFooterText(s string) string { return strings.ReplaceAll(s, "&", "&&") }

// A Writer writes an XLSX workbook to an io.Writer as a stream: rows are
// formatted, deflated and written as they come, and memory does not grow
// with the number of rows.
//
// Set the exported fields before the first call to NewSheet or Write.
type Writer struct {
	// Level is the deflate level (github.com/klauspost/compress/flate,
	// 1..9, -1 for its default); 0 means 1, the fastest.
	Level int
	// MaxRows is the number of data rows per sheet after which the rows go
	// on in a new sheet "Name (2)", "Name (3)", … repeating header, widths
	// and panes. 0 or more than the Excel limit means the Excel limit
	// (1,048,575 data rows below a header).
	MaxRows int
	// Properties are the document properties.
	Properties Properties
	// HeaderFooter is the printed header and footer of every sheet,
	// rollover sheets included.
	HeaderFooter HeaderFooter
	// NoFreeze leaves the header row unfrozen.
	NoFreeze bool
	// NoAutoFilter leaves the header row without an autofilter.
	NoAutoFilter bool
	// SingleThread deflates in the calling goroutine. By default, when
	// GOMAXPROCS > 1, a second goroutine deflates and writes while the
	// caller formats the XML.
	SingleThread bool
	// TotalLabel is written in the totals row (of a sheet whose columns
	// ask for totals), in the first column, when that column has no
	// total; "" means DefaultTotalLabel.
	TotalLabel string

	dst         io.Writer
	started     bool
	compressing bool // the first row has come: see compress
	closed      bool
	err         error // sticky: an output error or a failed Close
	z           *zipWriter
	p           *pipe
	buf         []byte

	sheets   []sheetInfo
	cur      *sheetInfo
	cols     []Column
	colState []colState
	header   bool
	sheetRow int // rows written in the current sheet, header included
	dataRows int // data rows written in the current sheet
	rowNum   []byte
	maxRows  int

	numFmts   []string       // custom number formats, id 164+i
	xfOf      map[string]int // number format -> cellXfs index
	truncated int
	textDates int

	// totals of the current sheet's series (total.go)
	totalCols []int // the columns with a total
	accums    []accum
	pieces    []piece // the series' sheets that have ended (rollover)
}

type sheetInfo struct {
	name     string
	base     string // name given to NewSheet, for rollover names
	part     int    // n of xl/worksheets/sheetN.xml
	lastRow  int
	nCols    int
	filtered bool
	seq      int // rollover number: 1 for the first sheet of a series
}

// colState is a column's precomputed XML. A cell's reference (r="B7") is
// written only where the cell does not directly follow the previous cell
// written in its row (see cellStart).
type colState struct {
	ref  string // ` r="B`: the cell's reference, without the row number
	num  string // ` s="3"><v>` or `><v>`
	date string
	dt   string
}

// NewWriter returns a Writer that writes a workbook to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{dst: w}
}

func (w *Writer) start() error {
	if w.started {
		return nil
	}
	w.started = true
	if w.Properties.Created.IsZero() {
		w.Properties.Created = time.Now()
	}
	level := w.Level
	if level == 0 {
		level = defaultLevel
	}
	w.z = newZipWriter(w.dst, level, w.Properties.Created)
	w.maxRows = w.MaxRows
	w.xfOf = map[string]int{}
	// The leading parts are small and written here, stored; the
	// compressor, the big buffers and the pipe's goroutine come with the
	// first row (compress), so that a writer waiting for its rows costs
	// a few KiB.
	w.buf = make([]byte, 0, 2<<10)
	if err := w.begin("_rels/.rels"); err != nil {
		return err
	}
	w.buf = append(w.buf, relsXML...)
	return w.endEntry()
}

// compress starts deflating, at the first row: the XML formatted so far
// and every later byte are compressed (by the pipe's goroutine when
// GOMAXPROCS > 1).
func (w *Writer) compress() error {
	if w.compressing {
		return nil
	}
	w.compressing = true
	if err := w.z.compress(); err != nil {
		return err
	}
	pending := w.buf
	if !w.SingleThread && runtime.GOMAXPROCS(0) > 1 {
		w.p, w.buf = newPipe(w.z)
		runtime.AddCleanup(w, func(p *pipe) { p.stop() }, w.p)
	} else {
		w.buf = make([]byte, 0, bufSize+bufSize/4)
	}
	w.buf = append(w.buf, pending...)
	return nil
}

// Error reports any error that has occurred during a previous Write, Flush
// or Close.
func (w *Writer) Error() error {
	if w.err != nil {
		return w.err
	}
	if w.p != nil {
		if err := w.p.failed(); err != nil {
			return err
		}
	}
	if w.z != nil && w.p == nil {
		return w.z.err
	}
	return nil
}

// Truncated returns the number of cells cut to 32,767 characters.
func (w *Writer) Truncated() int { return w.truncated }

// TextDates returns the number of date cells written as text because Excel
// cannot show them as dates (before 1900-03-01 or after 9999-12-31).
func (w *Writer) TextDates() int { return w.textDates }

func (w *Writer) fail(err error) error {
	if w.err == nil {
		w.err = err
	}
	return w.err
}

// sink operations: in the pipe's goroutine, or here when single-threaded.

func (w *Writer) begin(name string) error {
	if w.p != nil {
		w.p.ops <- op{kind: opBegin, name: name}
		return w.p.failed()
	}
	return w.z.begin(name)
}

// emit hands the formatted bytes over to be deflated.
func (w *Writer) emit() error {
	if len(w.buf) == 0 {
		return nil
	}
	if w.p != nil {
		w.p.ops <- op{kind: opData, buf: w.buf}
		w.buf = <-w.p.free
		return w.p.failed()
	}
	err := w.z.write(w.buf)
	w.buf = w.buf[:0]
	return err
}

func (w *Writer) endEntry() error {
	if err := w.emit(); err != nil {
		return err
	}
	if w.p != nil {
		w.p.ops <- op{kind: opEnd}
		return w.p.failed()
	}
	return w.z.end()
}

func (w *Writer) flushSink() error {
	if err := w.emit(); err != nil {
		return err
	}
	if w.p != nil {
		w.p.ops <- op{kind: opFlush}
		return <-w.p.done
	}
	return w.z.flush()
}

func (w *Writer) closeSink() error {
	if err := w.emit(); err != nil {
		return err
	}
	if w.p != nil {
		w.p.ops <- op{kind: opClose}
		err := <-w.p.done
		w.p.stop()
		return err
	}
	return w.z.close()
}

// ValidSheetName reports why name cannot be a sheet name, or nil: it must
// be 1 to 31 characters, contain none of []:*?/\ nor a control
// character, not begin or end with an apostrophe, and not be "History".
func ValidSheetName(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrSheetName)
	}
	if !utf8.ValidString(name) {
		return fmt.Errorf("%w %q: not UTF-8", ErrSheetName, name)
	}
	if n := utf16Len(name); n > MaxSheetName {
		return fmt.Errorf("%w %q: %d characters, at most %d", ErrSheetName, name, n, MaxSheetName)
	}
	if i := strings.IndexAny(name, `[]:*?/\`); i >= 0 {
		return fmt.Errorf("%w %q: contains %q (none of []:*?/\\ allowed)", ErrSheetName, name, name[i])
	}
	for _, r := range name {
		if r < 0x20 || !xmlChar(r) {
			return fmt.Errorf("%w %q: contains control character %U", ErrSheetName, name, r)
		}
	}
	if name[0] == '\'' || name[len(name)-1] == '\'' {
		return fmt.Errorf("%w %q: begins or ends with an apostrophe", ErrSheetName, name)
	}
	if strings.EqualFold(name, "History") {
		return fmt.Errorf("%w %q: reserved by Excel", ErrSheetName, name)
	}
	return nil
}

func utf16Len(s string) int {
	n := 0
	for _, r := range s {
		n += utf16.RuneLen(r)
	}
	return n
}

func xmlChar(r rune) bool {
	return r == 0x9 || r == 0xA || r == 0xD || (r >= 0x20 && r <= 0xD7FF) ||
		(r >= 0xE000 && r <= 0xFFFD) || (r >= 0x10000 && r <= 0x10FFFF)
}

func (w *Writer) nameTaken(name string) bool {
	for i := range w.sheets {
		if strings.EqualFold(w.sheets[i].name, name) {
			return true
		}
	}
	return false
}

// NewSheet ends the current sheet, if any, and starts a sheet named name
// with the given columns. A header row (bold) is written when any column
// has a Header. The first call pushes the workbook's leading bytes to the
// destination at once, before any row.
func (w *Writer) NewSheet(name string, cols []Column) error {
	if w.closed {
		return ErrClosed
	}
	if err := ValidSheetName(name); err != nil {
		return err
	}
	if w.nameTaken(name) {
		return fmt.Errorf("%w %q: a sheet of that name exists (names are compared case-insensitively)", ErrSheetName, name)
	}
	if len(cols) > MaxColumns {
		return ErrTooManyColumns
	}
	if err := w.Error(); err != nil {
		return err
	}
	first := !w.started
	if err := w.start(); err != nil {
		return w.fail(err)
	}
	if err := w.startSheet(name, name, 1, cols); err != nil {
		return w.fail(err)
	}
	if first {
		if err := w.flushSink(); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

func (w *Writer) startSheet(name, base string, seq int, cols []Column) error {
	if w.cur != nil {
		if seq > 1 {
			w.pieces = append(w.pieces, piece{name: w.cur.name, first: w.firstDataRow(), last: w.sheetRow})
		}
		if err := w.endSheet(seq == 1); err != nil {
			return err
		}
	}
	if seq == 1 {
		w.startTotals(cols)
	}
	w.cols = append(w.cols[:0], cols...)
	w.header = false
	for _, c := range cols {
		if c.Header != "" {
			w.header = true
		}
	}
	w.sheets = append(w.sheets, sheetInfo{name: name, base: base, part: len(w.sheets) + 1, nCols: len(cols), seq: seq})
	w.cur = &w.sheets[len(w.sheets)-1]
	w.cur.filtered = w.header && !w.NoAutoFilter && len(cols) > 0
	w.sheetRow, w.dataRows = 0, 0
	w.rowNum = append(w.rowNum[:0], '0')
	limit := MaxSheetRows
	if w.header {
		limit--
	}
	if len(w.totalCols) > 0 {
		limit-- // the totals row
	}
	w.maxRows = w.MaxRows
	if w.maxRows <= 0 || w.maxRows > limit {
		w.maxRows = limit
	}
	w.colState = w.colState[:0]
	for i := range cols {
		w.addColState(cols[i].NumFmt)
	}
	if err := w.begin("xl/worksheets/sheet" + strconv.Itoa(w.cur.part) + ".xml"); err != nil {
		return err
	}
	b := append(w.buf, xmlHeader...)
	b = append(b, `<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships">`...)
	b = append(b, `<sheetViews><sheetView workbookViewId="0"`...)
	if len(w.sheets) == 1 {
		b = append(b, ` tabSelected="1"`...)
	}
	if w.header && !w.NoFreeze {
		b = append(b, `><pane ySplit="1" topLeftCell="A2" activePane="bottomLeft" state="frozen"/><selection pane="bottomLeft" activeCell="A2" sqref="A2"/></sheetView></sheetViews>`...)
	} else {
		b = append(b, `/></sheetViews>`...)
	}
	b = append(b, `<sheetFormatPr defaultRowHeight="15"/>`...)
	wrote := false
	for i, c := range cols {
		if c.Width <= 0 {
			continue
		}
		if !wrote {
			b = append(b, `<cols>`...)
			wrote = true
		}
		n := strconv.Itoa(i + 1)
		b = append(b, `<col min="`...)
		b = append(b, n...)
		b = append(b, `" max="`...)
		b = append(b, n...)
		b = append(b, `" width="`...)
		b = strconv.AppendFloat(b, min(c.Width, 255), 'f', -1, 64)
		b = append(b, `" customWidth="1"/>`...)
	}
	if wrote {
		b = append(b, `</cols>`...)
	}
	b = append(b, `<sheetData>`...)
	w.buf = b
	if w.header {
		w.nextRow()
		b = append(w.buf, `<row r="1">`...)
		next := 0
		for i, c := range cols {
			if c.Header == "" {
				continue
			}
			b = w.cellStart(b, i, &next)
			b = append(b, ` s="1" t="inlineStr"><is>`...)
			b = w.appendText(b, c.Header)
			b = append(b, `</is></c>`...)
		}
		w.buf = append(b, `</row>`...)
	}
	return nil
}

// addColState precomputes the XML of column len(w.colState).
func (w *Writer) addColState(numFmt string) {
	i := len(w.colState)
	cs := colState{ref: ` r="` + columnName(i)}
	cs.num = `><v>`
	if numFmt != "" {
		cs.num = ` s="` + strconv.Itoa(w.xf(numFmt)) + `"><v>`
	}
	df, dtf := DateFormat, DateTimeFormat
	if numFmt != "" {
		df, dtf = numFmt, numFmt
	}
	cs.date = ` s="` + strconv.Itoa(w.xf(df)) + `"><v>`
	cs.dt = ` s="` + strconv.Itoa(w.xf(dtf)) + `"><v>`
	w.colState = append(w.colState, cs)
}

// cellStart appends the start of the cell in column i of the current row,
// `<c`, with its reference ` r="B7"` only when the cell does not directly
// follow the previous cell written in the row: the reference is optional
// (ECMA-376 Part 1, §18.3.1.4 c, CT_Cell's r), and a cell without one is
// in the column after the previous cell of its row, or in column A when it
// is the row's first. next is the column that follows the previous cell
// (0 at the start of a row); cellStart advances it past column i.
func (w *Writer) cellStart(b []byte, i int, next *int) []byte {
	b = append(b, `<c`...)
	if i != *next {
		b = append(b, w.colState[i].ref...)
		b = append(b, w.rowNum...)
		b = append(b, '"')
	}
	*next = i + 1
	return b
}

// xf returns the cellXfs index of a number format: 0 is the default style,
// 1 the bold header, then one per distinct format.
func (w *Writer) xf(numFmt string) int {
	if i, ok := w.xfOf[numFmt]; ok {
		return i
	}
	w.numFmts = append(w.numFmts, numFmt)
	i := len(w.numFmts) + 1
	w.xfOf[numFmt] = i
	return i
}

// columnName returns the letters of the 0-based column i: A, B, …, XFD.
func columnName(i int) string {
	var b [4]byte
	n := len(b)
	for i++; i > 0; i = (i - 1) / 26 {
		n--
		b[n] = byte('A' + (i-1)%26)
	}
	return string(b[n:])
}

// nextRow advances the sheet row number and its decimal digits.
func (w *Writer) nextRow() {
	w.sheetRow++
	d := w.rowNum
	i := len(d) - 1
	for ; i >= 0; i-- {
		if d[i] != '9' {
			d[i]++
			return
		}
		d[i] = '0'
	}
	w.rowNum = append([]byte{'1'}, d...) // all nines became zeros: one digit more
}

// endSheet ends the current sheet; last says it is the last of its
// series (no rollover follows), which gets the totals row.
func (w *Writer) endSheet(last bool) error {
	s := w.cur
	s.lastRow = w.sheetRow // the autofilter's last row: the totals row is not filtered
	if last && len(w.totalCols) > 0 {
		w.writeTotals()
	}
	b := append(w.buf, `</sheetData>`...)
	if s.filtered {
		b = append(b, `<autoFilter ref="A1:`...)
		b = append(b, columnName(s.nCols-1)...)
		b = strconv.AppendInt(b, int64(max(s.lastRow, 1)), 10)
		b = append(b, `"/>`...)
	}
	if hf := w.HeaderFooter; hf.OddHeader != "" || hf.OddFooter != "" {
		// After autoFilter (and where pageMargins and pageSetup would
		// be), as CT_Worksheet orders its elements.
		b = append(b, `<headerFooter>`...)
		if hf.OddHeader != "" {
			b = append(b, `<oddHeader>`...)
			b = appendEscaped(b, hf.OddHeader)
			b = append(b, `</oddHeader>`...)
		}
		if hf.OddFooter != "" {
			b = append(b, `<oddFooter>`...)
			b = appendEscaped(b, hf.OddFooter)
			b = append(b, `</oddFooter>`...)
		}
		b = append(b, `</headerFooter>`...)
	}
	w.buf = append(b, `</worksheet>`...)
	w.cur = nil
	return w.endEntry()
}

// rollover continues the current sheet in a new one, "Name (n)".
func (w *Writer) rollover() error {
	base, seq := w.cur.base, w.cur.seq
	var name string
	for {
		seq++
		suffix := " (" + strconv.Itoa(seq) + ")"
		name = cutUTF16(base, MaxSheetName-len(suffix)) + suffix
		if !w.nameTaken(name) {
			break
		}
	}
	return w.startSheet(name, base, seq, w.cols)
}

func cutUTF16(s string, n int) string {
	units := 0
	for i, r := range s {
		units += utf16.RuneLen(r)
		if units > n {
			return s[:i]
		}
	}
	return s
}

// Write writes one row. Cells are written from column A on; empty cells
// are left out. A Write before any NewSheet starts a sheet "Sheet1" without
// columns. The row is not retained.
func (w *Writer) Write(row []Cell) error {
	if w.closed {
		if w.err != nil {
			return w.err
		}
		return ErrClosed
	}
	if len(row) > MaxColumns {
		return ErrTooManyColumns
	}
	if w.err != nil {
		return w.err
	}
	if w.cur == nil {
		if err := w.NewSheet("Sheet1", nil); err != nil {
			return err
		}
	}
	if !w.compressing {
		if err := w.compress(); err != nil {
			return w.fail(err)
		}
	}
	if w.dataRows >= w.maxRows {
		if err := w.rollover(); err != nil {
			return w.fail(err)
		}
	}
	for len(w.colState) < len(row) {
		w.addColState("")
	}
	w.nextRow()
	w.dataRows++
	b := append(w.buf, `<row r="`...)
	b = append(b, w.rowNum...)
	b = append(b, `">`...)
	next := 0 // the column after the previous cell written (cellStart)
	for i := range row {
		c := &row[i]
		cs := &w.colState[i]
		switch c.Type {
		case CellEmpty:
			continue
		case CellInt:
			b = w.cellStart(b, i, &next)
			if c.I <= 1<<53 && c.I >= -(1<<53) {
				b = append(b, cs.num...)
				b = strconv.AppendInt(b, c.I, 10)
				b = append(b, `</v></c>`...)
			} else {
				b = append(b, ` t="inlineStr"><is><t>`...)
				b = strconv.AppendInt(b, c.I, 10)
				b = append(b, `</t></is></c>`...)
			}
		case CellFloat:
			f := c.F
			if f != f || f > maxFloat || f < -maxFloat {
				continue // NaN, ±Inf: empty cell
			}
			b = w.cellStart(b, i, &next)
			b = append(b, cs.num...)
			b = appendFloat(b, f)
			b = append(b, `</v></c>`...)
		case CellString:
			if c.S == "" {
				continue
			}
			b = w.cellStart(b, i, &next)
			b = append(b, ` t="inlineStr"><is>`...)
			b = w.appendText(b, c.S)
			b = append(b, `</is></c>`...)
		case CellBool:
			b = w.cellStart(b, i, &next)
			if c.I != 0 {
				b = append(b, ` t="b"><v>1</v></c>`...)
			} else {
				b = append(b, ` t="b"><v>0</v></c>`...)
			}
		case CellDate, CellDateTime:
			b = w.cellStart(b, i, &next)
			b = w.appendDate(b, c.T, c.Type == CellDateTime, cs)
		case CellDecimal:
			if c.S == "" {
				continue
			}
			b = w.cellStart(b, i, &next)
			n := len(b)
			b = append(b, cs.num...)
			var ok bool
			if b, ok = appendDecimal(b, c.S); ok {
				b = append(b, `</v></c>`...)
			} else {
				b = b[:n]
				b = append(b, ` t="inlineStr"><is>`...)
				b = w.appendText(b, c.S)
				b = append(b, `</is></c>`...)
			}
		default:
			return fmt.Errorf("xlsx: column %d: unknown cell type %d", i+1, c.Type)
		}
		if len(b) >= bufSize {
			w.buf = b
			if err := w.emit(); err != nil {
				return w.fail(err)
			}
			b = w.buf
		}
	}
	w.buf = append(b, `</row>`...)
	if len(w.totalCols) > 0 {
		w.addTotals(row)
	}
	if len(w.buf) >= bufSize {
		if err := w.emit(); err != nil {
			return w.fail(err)
		}
	}
	return nil
}

// Flush pushes every byte written so far to the destination, ending with
// an empty deflate block. The content of the finished workbook does not
// change, so Flush can be called at any time, e.g. as a keep-alive.
func (w *Writer) Flush() error {
	if w.closed || !w.started {
		return w.Error()
	}
	if err := w.Error(); err != nil {
		return err
	}
	if err := w.flushSink(); err != nil {
		return w.fail(err)
	}
	return nil
}

// Close ends the last sheet and writes the workbook's remaining parts and
// the ZIP central directory. It does not close the destination. A
// workbook without sheets gets an empty "Sheet1".
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	if err := w.Error(); err != nil {
		w.closed = true
		if w.p != nil {
			w.p.abort()
		}
		return err
	}
	if w.cur == nil && len(w.sheets) == 0 {
		if err := w.NewSheet("Sheet1", nil); err != nil {
			return err
		}
	}
	w.closed = true
	if err := w.finish(); err != nil {
		if w.p != nil {
			w.p.abort()
		}
		return w.fail(err)
	}
	return nil
}

// Abort stops the writer without finishing the workbook, for an export
// that failed midway: nothing more is written to the destination (not even
// bytes already formatted), and the background goroutine, if any, has
// ended when Abort returns. The destination holds an incomplete archive,
// which no reader takes for a whole one. Later calls return ErrAborted.
func (w *Writer) Abort() {
	if w.closed {
		return
	}
	w.closed = true
	w.fail(ErrAborted)
	if w.p != nil {
		w.p.abort()
	}
}

func (w *Writer) finish() error {
	if w.cur != nil {
		if err := w.endSheet(true); err != nil {
			return err
		}
	}
	for _, part := range []struct {
		name string
		xml  func([]byte) []byte
	}{
		{"xl/workbook.xml", w.workbookXML},
		{"xl/_rels/workbook.xml.rels", w.workbookRelsXML},
		{"xl/styles.xml", w.stylesXML},
		{"docProps/core.xml", w.coreXML},
		{"docProps/app.xml", w.appXML},
		{"[Content_Types].xml", w.contentTypesXML},
	} {
		if err := w.begin(part.name); err != nil {
			return err
		}
		w.buf = part.xml(w.buf)
		if err := w.endEntry(); err != nil {
			return err
		}
	}
	return w.closeSink()
}
