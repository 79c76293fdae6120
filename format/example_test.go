package format_test

import (
	"fmt"
	"os"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/format"
)

// A CSV writer made by format.New: the header from the columns, values
// typed as the database gave them, the formula-injection guard on text,
// and an empty field for NULL.
func ExampleNew() {
	cols := []exportd.Column{
		{Name: "id", Type: exportd.TypeInt},
		{Name: "name", Header: "이름", Type: exportd.TypeString},
		{Name: "joined", Type: exportd.TypeDate},
		{Name: "note", Type: exportd.TypeString},
	}
	w, err := format.New(exportd.FormatCSV, os.Stdout, cols, format.Options{})
	if err != nil {
		fmt.Println(err)
		return
	}
	day := time.Date(2024, 3, 1, 0, 0, 0, 0, time.UTC)
	w.WriteRow([]exportd.Value{exportd.Int(1), exportd.String("김민준"), exportd.Date(day), exportd.String("=HYPERLINK(\"x\")")})
	w.WriteRow([]exportd.Value{exportd.Int(2), exportd.String("R&D, \"lab\""), exportd.Date(day), exportd.Null()})
	if err := w.Close(); err != nil {
		fmt.Println(err)
	}
	// Output:
	// id,이름,joined,note
	// 1,김민준,2024-03-01,"'=HYPERLINK(""x"")"
	// 2,"R&D, ""lab""",2024-03-01,
}
