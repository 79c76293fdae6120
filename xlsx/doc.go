// Package xlsx writes Excel workbooks (.xlsx) as a stream.
//
// A [Writer] has the shape of encoding/csv's: create it on any io.Writer,
// start a sheet, write typed rows, Flush when bytes must leave now, Close.
// Every row is formatted, deflated and written as it comes: no temporary
// file, no seeking, no sheet held in memory. Memory depends on the number
// of columns, never on the number of rows, and the first bytes leave with
// the first NewSheet, before any row exists.
//
//	w := xlsx.NewWriter(httpResponse)
//	w.NewSheet("Members", []xlsx.Column{{Header: "id"}, {Header: "joined", NumFmt: "yyyy-mm-dd"}})
//	for rows.Next() {
//		w.Write([]xlsx.Cell{xlsx.Int(id), xlsx.Date(joined)})
//	}
//	err := w.Close()
//
// A Write before any NewSheet starts a sheet named "Sheet1" without
// columns; Close on a Writer without sheets writes a workbook with one
// empty "Sheet1".
//
// # Values
//
//   - Int: a number when |v| <= 2^53; beyond, the exact digits as text.
//   - Float: a number in shortest round-trip form; negative zero is written
//     as 0 (Excel has no negative zero); NaN and ±Inf give an empty cell.
//   - Decimal: plain-notation text ("-12.50"); a number when it has at most
//     15 significant digits (leading and trailing zeros do not count) and
//     fits a double's normal range, otherwise the exact text. Text that is
//     not a plain decimal (e.g. "1e5") is written as text.
//   - String: an inline string (t="inlineStr"). Characters that XML 1.0
//     forbids (C0 controls other than tab, LF and CR; U+FFFE; U+FFFF) are
//     removed; each byte of invalid UTF-8 becomes U+FFFD; CR is kept as
//     &#13;; an underscore that would begin an _xHHHH_ escape (1 to 4 hex
//     digits: LibreOffice decodes _x12_ too) is written as _x005F_, so
//     that Excel, excelize and LibreOffice show the text as given
//     (openpyxl does not undo that escape in inline strings). Text longer than 32,767
//     characters is cut there and counted by [Writer.Truncated]. Characters
//     are counted as Excel counts them, in UTF-16 code units (an emoji
//     counts 2), and a surrogate pair is never split. The empty string is
//     an empty cell. Text that looks like a formula ("=1+1") stays text.
//   - Bool: a boolean cell.
//   - Date and DateTime: Excel serial numbers (1900 date system) of T's
//     wall clock with the column's NumFmt, or yyyy-mm-dd / yyyy-mm-dd
//     hh:mm:ss. Dates before 1900-03-01 (where Excel's serials disagree
//     with the calendar because of its fictitious 1900-02-29, and other
//     readers disagree with Excel) and after 9999-12-31 cannot be Excel
//     dates: they are written as ISO 8601 text ("1899-12-31",
//     "10000-01-01 00:00:00") and counted by [Writer.TextDates]; the
//     export never fails on them.
//
// # Sheets
//
// A sheet gets a bold header row when any column has a Header, and then,
// unless [Writer.NoFreeze] or [Writer.NoAutoFilter] are set, a frozen
// header row and an autofilter over it (with the _xlnm._FilterDatabase
// defined name Excel needs). No <dimension> is written: a stream does not
// know its last row when the sheet starts, and a wrong one misleads readers
// such as openpyxl's read-only mode. After [Writer.MaxRows] data rows the
// rows go on in "Name (2)", "Name (3)", … with the same header, widths and
// panes. Sheet names are checked by [ValidSheetName].
//
// Empty cells are left out. Every row carries its number (<row r="7">),
// but a cell carries its reference (r="D7") only when it does not directly
// follow the previous cell written in its row — the first cell of a row
// after empty cells, or a cell after a gap: the reference is optional
// (ECMA-376 Part 1, §18.3.1.4 c), and a cell without one is in the column
// after the previous cell, or in column A. In a sheet without empty cells
// no cell has a reference. For the standard benchmark dataset (ten
// columns, a million rows, a NULL in one row of five) the sheet XML is a
// quarter smaller than with every reference (470 → 356 MB), and 37%
// smaller deflated. The tests read such sheets back, cell by coordinate,
// with excelize, openpyxl (read-only and normal mode) and LibreOffice.
//
// # Totals
//
// A column with a [Column.Total] gets a totals row below the sheet's last
// data row, after the last sheet of its rollover series: a formula cell
// (ECMA-376 Part 1, §18.3.1.4 c with §18.3.1.40 f and v) holding
// SUBTOTAL(109, B2:B100) for a sum (101 average, 102 count, 105 min, 104
// max: the 100s leave out rows a filter hides), over every sheet of the
// series ('Name'!B2:B1048575, 'Name (2)'!…, B2:B70), with its value
// computed as the rows were written cached in <v>, so that readers that do
// not calculate show it. The autofilter ends above the totals row. The
// first column without a total holds [Writer.TotalLabel]. A sheet without
// data rows gets plain values (0 for a sum or a count), since a range
// would cover the header or the totals row itself.
//
// # ZIP layout
//
// Every part is a deflated entry (github.com/klauspost/compress/flate,
// level 1 by default) followed by a data descriptor; the parts whose
// content depends on the whole workbook (workbook.xml, styles.xml,
// [Content_Types].xml, docProps) come after the sheets. The layout is the
// one Apache POI writes for streamed workbooks (its opczip
// OpcOutputStream, made after POI bug 57342, where Excel asked to repair
// a >4 GiB sheet whose local header said version 2.0):
//
//   - Every local header says version needed 4.5, sets flag bit 3, and has
//     CRC-32 and sizes 0 and no extra field. The writer cannot know whether
//     an entry will pass 4 GiB when it starts it, and Excel wants 4.5 for a
//     ZIP64 entry; it rejects local headers carrying 0xFFFFFFFF sizes plus a
//     ZIP64 extra on small entries (minizip-ng #894), so there is none.
//   - The data descriptor (APPNOTE 4.3.9) has 8-byte sizes only when a size
//     has reached 4 GiB (0xFFFFFFFF), and 4-byte sizes otherwise. Here we
//     depart from opczip, which always writes 8-byte sizes: APPNOTE 4.3.9.2
//     says a reader takes 8-byte sizes when the entry is ZIP64, and
//     streaming readers decide that from the sizes they counted (Java's
//     ZipInputStream, Info-ZIP, Go's archive/zip writer) or from a ZIP64
//     extra field, which these entries do not have; a 24-byte descriptor
//     after a small entry misleads them, whereas Excel reads the central
//     directory. Excel accepts 16-byte descriptors on small entries (Go's
//     archive/zip writes them, and excelize's files open in Excel).
//   - The central directory says version 4.5 and carries a ZIP64 extra
//     field only for an entry whose uncompressed or compressed size or
//     offset reaches 4 GiB, holding just those values (APPNOTE 4.5.3).
//   - The ZIP64 end of central directory record and locator are written
//     only when the directory's offset or size reaches 4 GiB or it has
//     65,535 entries or more.
//
// # Flush
//
// [Writer.Flush] pushes every byte written so far to the io.Writer: it
// hands the formatted rows to the deflater, which ends them with an empty
// stored block (00 00 ff ff, a sync flush) so that they can be inflated at
// once, and flushes the buffered output. The block inflates to nothing:
// the finished workbook's content does not change, so Flush can serve as a
// keep-alive on a live HTTP response.
//
// Until the first row, the writer holds no compressor: the leading parts
// and the sheet's start are written as stored deflate blocks, and a Flush
// adds an empty stored block (00 00 00 ff ff). A writer that has started
// its file and waits for rows (a download queued on a busy server) thus
// costs a few KiB, not the compressor's MiB; the first row starts the
// compressor, whose blocks go on in the same deflate stream.
//
// # Concurrency
//
// By default, when GOMAXPROCS > 1, a second goroutine computes the CRC,
// deflates and writes while the caller formats XML, with four 64 KiB
// buffers in flight, from the first row on; [Writer.SingleThread] turns
// that off. The goroutine ends with Close, or when a Writer dropped
// without Close is collected. A Writer, like encoding/csv's, is not safe
// for concurrent use.
package xlsx
