// Package dataset generates the standard benchmark dataset of
// ../shared/BENCHMARKS.md: row i is a pure function of i.
package dataset

import (
	"github.com/exportd/exportd/xlsx"
	"strconv"
	"time"
	"unsafe"
)

// Columns are the header names, A..J.
var Columns = []string{"id", "name", "email", "signup_at", "score_avg", "visits", "active", "balance", "note", "category"}

// NumFmts are the XLSX number formats of the columns ("" for none).
var NumFmts = []string{"", "", "", "yyyy-mm-dd hh:mm:ss", "", "", "", "#,##0.00", "", ""}

// Widths are suggested XLSX column widths.
var Widths = []float64{10, 10, 26, 20, 10, 8, 8, 14, 24, 10}

var (
	surname  = []string{"김", "이", "박", "최", "정", "강", "조", "윤", "장", "임", "한", "오", "서", "신", "권", "황", "안", "송", "전", "홍"}
	given1   = []string{"민", "서", "지", "하", "도", "예", "수", "시", "주", "현", "유", "은", "채", "윤", "승", "다"}
	given2   = []string{"준", "윤", "호", "연", "아", "린", "원", "진", "우", "빈", "희", "은", "율", "현", "영", "성"}
	category = []string{"standard", "silver", "gold", "platinum", "dormant"}
	names    = func() []string {
		n := make([]string, 20*16*16)
		for i := range n {
			n[i] = surname[i%20] + given1[(i/20)%16] + given2[(i/320)%16]
		}
		return n
	}()
	epoch = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
)

// Row is one row of the dataset.
type Row struct {
	ID       int64
	Name     string
	Email    string
	SignupAt time.Time // UTC
	ScoreAvg float64
	Visits   int64
	Active   bool
	Balance  float64
	Note     string
	NoteNull bool
	Category string
}

// Get returns row i. Its strings are fresh; see Generator for a generator
// that does not allocate.
func Get(i int) Row {
	var g Generator
	r := g.Row(i)
	r.Email = string([]byte(r.Email))
	r.Note = string([]byte(r.Note))
	return r
}

// Generator makes rows without allocating: the Email and Note strings of a
// row are valid only until the next call to Row.
type Generator struct {
	email, note []byte
}

// Row returns row i.
func (g *Generator) Row(i int) Row {
	n := int64(i)
	r := Row{
		ID:       n + 1,
		Name:     names[i%(20*16*16)],
		SignupAt: epoch.Add(time.Duration(n*37) * time.Minute),
		ScoreAvg: float64((n*7919)%10000) / 100.0,
		Visits:   (n * 31) % 5000,
		Active:   i%3 != 0,
		Balance:  float64((n*104729)%10000000) / 100.0,
		Category: category[(i/7)%5],
	}
	g.email = append(strconv.AppendInt(append(g.email[:0], "user"...), n, 10), "@example.com"...)
	r.Email = unsafe.String(unsafe.SliceData(g.email), len(g.email))
	switch {
	case i%5 == 0:
		r.NoteNull = true
		return r
	case i%7 == 1:
		g.note = append(g.note[:0], "R&D, priority "...)
	case i%11 == 2:
		g.note = append(g.note[:0], `said "hi" #`...)
	case i%13 == 3:
		g.note = append(g.note[:0], "line1\nline2 #"...)
	default:
		g.note = append(g.note[:0], "메모 "...)
	}
	g.note = strconv.AppendInt(g.note, n, 10)
	r.Note = unsafe.String(unsafe.SliceData(g.note), len(g.note))
	return r
}

// Serial is the Excel serial number of row i's signup_at: 43831 + i*37/1440.
func Serial(i int) float64 { return 43831 + float64(i)*37/1440 }

// XLSXColumns returns the dataset's columns for the xlsx package: header,
// width and number format.
func XLSXColumns() []xlsx.Column {
	cols := make([]xlsx.Column, len(Columns))
	for i := range cols {
		cols[i] = xlsx.Column{Header: Columns[i], Width: Widths[i], NumFmt: NumFmts[i]}
	}
	return cols
}

// WriteXLSX writes rows rows of the dataset as the sheet "Sheet1" with
// xw and closes it.
func WriteXLSX(xw *xlsx.Writer, rows int) error {
	if err := xw.NewSheet("Sheet1", XLSXColumns()); err != nil {
		return err
	}
	var g Generator
	row := make([]xlsx.Cell, len(Columns))
	for i := range rows {
		r := g.Row(i)
		row[0] = xlsx.Int(r.ID)
		row[1] = xlsx.String(r.Name)
		row[2] = xlsx.String(r.Email)
		row[3] = xlsx.DateTime(r.SignupAt)
		row[4] = xlsx.Float(r.ScoreAvg)
		row[5] = xlsx.Int(r.Visits)
		row[6] = xlsx.Bool(r.Active)
		row[7] = xlsx.Float(r.Balance)
		if r.NoteNull {
			row[8] = xlsx.Empty()
		} else {
			row[8] = xlsx.String(r.Note)
		}
		row[9] = xlsx.String(r.Category)
		if err := xw.Write(row); err != nil {
			return err
		}
	}
	return xw.Close()
}
