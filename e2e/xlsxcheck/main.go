// Command xlsxcheck reads an XLSX export of the standard dataset with
// excelize's streaming row reader and checks every row against the
// generator in bench/dataset. The e2e tests build it without the race
// detector, so that reading a million rows stays fast under go test -race.
//
//	xlsxcheck -rows 1000000 accounts.xlsx
package main

import (
	"flag"
	"fmt"
	"math"
	"os"
	"strconv"
	"strings"

	"github.com/xuri/excelize/v2"

	"github.com/exportd/exportd/bench/dataset"
)

func main() {
	rows := flag.Int("rows", 0, "data rows the sheet must hold")
	sheet := flag.String("sheet", "Sheet1", "sheet name")
	flag.Parse()
	if err := check(flag.Arg(0), *sheet, *rows); err != nil {
		fmt.Fprintln(os.Stderr, "xlsxcheck:", err)
		os.Exit(1)
	}
	fmt.Printf("%d rows OK\n", *rows)
}

func check(path, sheet string, want int) error {
	x, err := excelize.OpenFile(path)
	if err != nil {
		return err
	}
	defer x.Close()
	rows, err := x.Rows(sheet)
	if err != nil {
		return err
	}
	defer rows.Close()
	i := -1
	for rows.Next() {
		cells, err := rows.Columns(excelize.Options{RawCellValue: true})
		if err != nil {
			return err
		}
		if i == -1 {
			if strings.Join(cells, ",") != strings.Join(dataset.Columns, ",") {
				return fmt.Errorf("header %q", cells)
			}
		} else if msg := checkRow(i, cells); msg != "" {
			return fmt.Errorf("row %d: %s: %q", i, msg, cells)
		}
		i++
	}
	if err := rows.Error(); err != nil {
		return err
	}
	if i != want {
		return fmt.Errorf("%d data rows, want %d", i, want)
	}
	return nil
}

// checkRow compares raw cell values with row i of the standard dataset.
func checkRow(i int, c []string) string {
	r := dataset.Get(i)
	for len(c) < 10 {
		c = append(c, "")
	}
	num := func(s string) float64 { v, _ := strconv.ParseFloat(s, 64); return v }
	switch {
	case c[0] != strconv.FormatInt(r.ID, 10):
		return "id"
	case c[1] != r.Name:
		return "name"
	case c[2] != r.Email:
		return "email"
	case math.Abs(num(c[3])-dataset.Serial(i)) > 1e-9:
		return "signup_at"
	case num(c[4]) != r.ScoreAvg:
		return "score_avg"
	case c[5] != strconv.FormatInt(r.Visits, 10):
		return "visits"
	case (c[6] == "1") != r.Active || (c[6] != "1" && c[6] != "0"):
		return "active"
	case num(c[7]) != r.Balance:
		return "balance"
	case r.NoteNull && c[8] != "", !r.NoteNull && c[8] != r.Note:
		return "note"
	case c[9] != r.Category:
		return "category"
	}
	return ""
}
