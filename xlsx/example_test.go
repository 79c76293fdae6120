package xlsx_test

import (
	"archive/zip"
	"bytes"
	"fmt"
	"log"
	"time"

	"github.com/exportd/exportd/xlsx"
)

func Example() {
	var buf bytes.Buffer // any io.Writer: a file, an http.ResponseWriter
	w := xlsx.NewWriter(&buf)
	w.Properties.Title = "Members"
	err := w.NewSheet("Members", []xlsx.Column{
		{Header: "id", Width: 8},
		{Header: "name", Width: 20},
		{Header: "joined", NumFmt: "yyyy-mm-dd"},
		{Header: "balance", NumFmt: "#,##0.00"},
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("bytes out before the first row:", buf.Len() > 0)
	rows := []struct {
		id      int64
		name    string
		joined  time.Time
		balance string
	}{
		{1, "김민준", time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), "1047.29"},
		{2, "=1+1 stays text", time.Date(2021, 6, 30, 0, 0, 0, 0, time.UTC), "12345678901234567890.5"},
	}
	for _, r := range rows {
		if err := w.Write([]xlsx.Cell{xlsx.Int(r.id), xlsx.String(r.name), xlsx.Date(r.joined), xlsx.Decimal(r.balance)}); err != nil {
			log.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}

	zr, err := zip.NewReader(bytes.NewReader(buf.Bytes()), int64(buf.Len()))
	if err != nil {
		log.Fatal(err)
	}
	for _, f := range zr.File {
		fmt.Println(f.Name)
	}
	// Output:
	// bytes out before the first row: true
	// _rels/.rels
	// xl/worksheets/sheet1.xml
	// xl/workbook.xml
	// xl/_rels/workbook.xml.rels
	// xl/styles.xml
	// docProps/core.xml
	// docProps/app.xml
	// [Content_Types].xml
}
