package exportd

import (
	"fmt"
	"strings"
	"testing"
	"time"
	"unicode/utf8"
)

func TestFileNameFor(t *testing.T) {
	loc := time.FixedZone("KST", 9*3600)
	params := map[string]any{
		"from":   date(2024, 1, 1),
		"at":     time.Date(2024, 3, 1, 9, 30, 5, 0, loc),
		"grades": []any{"gold", "silver"},
		"n":      int64(42),
		"r":      0.5,
		"b":      true,
		"none":   nil,
		"path":   `../../etc/passwd`,
		"evil":   "a:b*c?\"d<e>f|g\\h\x00i\tj\u202ek",
		"empty":  []any{},
	}
	tests := []struct {
		name, tmpl, ds string
		f              Format
		want           string
	}{
		{"Korean with date", "회원목록_{from}", "members", FormatXLSX, "회원목록_2024-01-01.xlsx"},
		{"default is the dataset name", "", "members", FormatCSV, "members.csv"},
		{"extension replaced", "report_{n}.xlsx", "d", FormatCSV, "report_42.csv"},
		{"upper-case extension replaced", "report.CSV", "d", FormatJSONL, "report.jsonl"},
		{"other dots kept", "v1.2_{r}", "d", FormatTSV, "v1.2_0.5.tsv"},
		{"list joined", "{grades}_{b}", "d", FormatXLSX, "gold-silver_true.xlsx"},
		{"datetime", "at_{at}", "d", FormatXLSX, "at_2024-03-01_09-30-05.xlsx"},
		{"null and empty list", "x{none}{empty}y", "d", FormatXLSX, "xy.xlsx"},
		{"path separators", "{path}", "d", FormatXLSX, "_.._etc_passwd.xlsx"},
		{"illegal and control characters", "{evil}", "d", FormatXLSX, "a_b_c__d_e_f_g_h_i_j_k.xlsx"},
		{"nothing left falls back to the name", "{none}", "d", FormatXLSX, "d.xlsx"},
		{"leading dots trimmed", ".{n}", "d", FormatCSV, "42.csv"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := &Dataset{Name: tt.ds, FileName: tt.tmpl}
			if got := d.FileNameFor(params, tt.f); got != tt.want {
				t.Errorf("got %q want %q", got, tt.want)
			}
		})
	}
}

func TestFileNameForLong(t *testing.T) {
	d := &Dataset{Name: "d", FileName: "{q}"}
	got := d.FileNameFor(map[string]any{"q": strings.Repeat("가", 300)}, FormatXLSX)
	if !utf8.ValidString(got) || len(got) > 255 || !strings.HasSuffix(got, "가.xlsx") {
		t.Errorf("len %d valid %v: %q", len(got), utf8.ValidString(got), got)
	}
}

func ExampleDataset_FileNameFor() {
	d := &Dataset{Name: "members", FileName: "회원목록_{from}"}
	name := d.FileNameFor(map[string]any{"from": DateArg{time.Date(2024, 1, 1, 0, 0, 0, 0, time.UTC)}}, FormatXLSX)
	fmt.Println(name)
	// Output:
	// 회원목록_2024-01-01.xlsx
}
