package audit

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"strings"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/format"
)

// ReviewColumns are the columns of the review file written by Export,
// labelled in Korean and English.
var ReviewColumns = []exportd.Column{
	{Name: "seq", Header: "일련번호 (Seq)", Type: exportd.TypeInt, Width: 10},
	{Name: "time", Header: "일시 (Time)", Type: exportd.TypeDateTime, Width: 20},
	{Name: "principal", Header: "사용자 (Principal)", Width: 18},
	{Name: "roles", Header: "역할 (Roles)", Width: 16},
	{Name: "client", Header: "접속지 (Client address)", Width: 18},
	{Name: "dataset", Header: "데이터셋 (Dataset)", Width: 18},
	{Name: "params", Header: "조회 조건 (Parameters)", Width: 30},
	{Name: "columns", Header: "항목 (Columns)", Width: 30},
	{Name: "purpose_category", Header: "목적 구분 (Purpose category)", Width: 16},
	{Name: "purpose", Header: "목적 (Purpose)", Width: 30},
	{Name: "format", Header: "형식 (Format)", Width: 8},
	{Name: "rows", Header: "행 수 (Rows)", Type: exportd.TypeInt, Format: "#,##0", Width: 10},
	{Name: "sheets", Header: "시트별 행 수 (Rows by sheet)", Width: 24},
	{Name: "bytes", Header: "크기 (Bytes)", Type: exportd.TypeInt, Format: "#,##0", Width: 12},
	{Name: "outcome", Header: "결과 (Outcome)", Width: 10},
	{Name: "ref", Header: "시작 기록 (Started record)", Type: exportd.TypeInt, Width: 10},
	{Name: "error", Header: "오류 (Error)", Width: 30},
	{Name: "sha256", Header: "SHA-256", Width: 20},
	{Name: "key_id", Header: "키 (Key ID)", Width: 10},
	{Name: "mac", Header: "MAC", Width: 20},
}

// Export writes the review file of the records whose time is in
// [from, to) to w, in format f (xlsx or csv; a CSV starts with a UTF-8 BOM
// so that Excel reads the Korean labels), one row per record in seq order
// under a header row of ReviewColumns. Times are shown in from's location
// (e.g. Asia/Seoul), without zone. Lists (roles, columns) are joined with
// ", ". An outcome record shows the seq of the started record it completes
// (ref). The rows of a workbook of several sheets are also shown sheet by
// sheet, "name: rows" joined with "; " (a sheet's name cannot hold ':').
// It returns the number of records written.
//
// Export verifies the whole trail first (see [Store.Verify]), in the same
// snapshot it then reads, and writes nothing when it does not verify: the
// error wraps ErrTampered and names each problem. It needs the trail's keys
// (Options.Keys; ErrNoKey without them).
func (s *Store) Export(ctx context.Context, from, to time.Time, w io.Writer, f exportd.Format) (int64, error) {
	if f != exportd.FormatXLSX && f != exportd.FormatCSV {
		return 0, fmt.Errorf("audit export: format %q (want xlsx or csv)", f)
	}
	if s.Keys().current == "" {
		return 0, fmt.Errorf("audit export: the trail is verified first: %w", ErrNoKey)
	}
	loc := from.Location()
	var (
		n   int64
		fw  exportd.RowWriter
		row = make([]exportd.Value, len(ReviewColumns))
	)
	err := s.locked(ctx, true, func(q querier) error {
		if _, err := s.verifyAll(ctx, q); err != nil {
			return err
		}
		var err error
		if fw, err = format.New(f, w, ReviewColumns, format.Options{BOM: f == exportd.FormatCSV, Sheet: "audit"}); err != nil {
			return err
		}
		return s.records(ctx, q, from, to, func(r *Record) error {
			ref := exportd.Null()
			if r.Ref != 0 {
				ref = exportd.Int(r.Ref)
			}
			row = append(row[:0],
				exportd.Int(r.Seq),
				exportd.DateTime(r.Time.In(loc)),
				exportd.String(r.Principal),
				exportd.String(strings.Join(r.Roles, ", ")),
				exportd.String(r.Client),
				exportd.String(r.Dataset),
				exportd.String(string(r.Params)),
				exportd.String(strings.Join(r.Columns, ", ")),
				exportd.String(r.Purpose.Category),
				exportd.String(r.Purpose.Text),
				exportd.String(r.Format),
				exportd.Int(r.Rows),
				exportd.String(sheetRows(r.Sheets)),
				exportd.Int(r.Bytes),
				exportd.String(string(r.Outcome)),
				ref,
				exportd.String(r.Error),
				exportd.String(r.SHA256),
				exportd.String(r.KeyID),
				exportd.String(r.MAC.String()),
			)
			n++
			return fw.WriteRow(row)
		})
	})
	if err != nil {
		if fw != nil {
			fw.Abort()
		}
		return n, fmt.Errorf("audit export: %w", err)
	}
	if err := fw.Close(); err != nil {
		return n, fmt.Errorf("audit export: %w", err)
	}
	return n, nil
}

// sheetRows shows the rows of each sheet: "요약: 12; 상세: 4300".
func sheetRows(sheets []Sheet) string {
	var b strings.Builder
	for i, sh := range sheets {
		if i > 0 {
			b.WriteString("; ")
		}
		b.WriteString(sh.Name)
		b.WriteString(": ")
		b.WriteString(strconv.FormatInt(sh.Rows, 10))
	}
	return b.String()
}
