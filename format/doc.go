// Package format holds exportd's row writers for CSV, TSV and JSON Lines,
// and the adapter that feeds exportd values to the streaming xlsx package.
// Every writer implements [exportd.RowWriter] and is made by [New]:
//
//	w, err := format.New(exportd.FormatCSV, out, cols, format.Options{BOM: true})
//	if err != nil { … }
//	for … { err = w.WriteRow(row) }
//	err = w.Close() // finishes the file; out stays open
//
// A [Book] writes several sheets into one file, one after the other: an
// XLSX workbook of several sheets, or, for CSV, TSV and JSON Lines, a ZIP
// archive of one file per sheet, deflated and flushed as it streams.
package format
