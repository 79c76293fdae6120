package server_test

import (
	"bytes"
	"encoding/json"
	"net/http"
	"reflect"
	"testing"

	"github.com/xuri/excelize/v2"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/jobs"
)

// sheetsDatasets is a personal dataset of two sheets over the people
// table.
const sheetsDatasets = `
  report:
    personal: true
    sheets:
      - name: 명단
        sql: SELECT id, name FROM {people} ORDER BY id
        columns: [{name: id, type: int}, {name: name, personal: true, mask: name}]
      - name: 점수
        sql: SELECT id, score FROM {people} ORDER BY id
        columns: [{name: id, type: int}, {name: score, type: float, total: sum}]
    access:
      admin: {all: full}
      support: {name: masked}
`

// A background job of a personal dataset of several sheets masks every
// sheet by the owner's roles, and each download's audit record lists the
// file's columns (SHEET.COLUMN) and the rows of each sheet.
func TestSheetsJobRecords(t *testing.T) {
	b := privacyBackends()[0] // SQLite
	f := newPrivacyFixtureWith(t, b, privacyOptions{jobs: true, datasets: sheetsDatasets})
	support := f.token(t, "sue", "support")
	c := http.DefaultClient
	resp, body := do(t, c, "POST", f.url+"/v1/datasets/report/jobs", map[string]any{"format": "xlsx",
		"params": map[string]any{"purpose": "member_support", "purpose_text": "회원 문의 1234번 응대를 위한 확인", "columns": "명단.name,점수.score"}}, support...)
	if resp.StatusCode != 202 {
		t.Fatalf("submit: %s %s", resp.Status, body)
	}
	var j jobs.Job
	json.Unmarshal(body, &j)
	j = waitJob(t, c, f.url, j.ID, support)
	if !reflect.DeepEqual(j.SheetRows, []exportd.SheetStats{{Name: "명단", Rows: 3}, {Name: "점수", Rows: 3}}) {
		t.Errorf("job's sheet rows %+v", j.SheetRows)
	}
	resp, body = do(t, c, "GET", f.url+"/v1/jobs/"+j.ID+"/download", nil, support...)
	if resp.StatusCode != 200 {
		t.Fatalf("download: %s", resp.Status)
	}
	x, err := excelize.OpenReader(bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer x.Close()
	names, _ := x.GetRows("명단")
	scores, _ := x.GetRows("점수")
	if !reflect.DeepEqual(names, [][]string{{"name"}, {"김*준"}, {"남**수"}, {"J*** S****"}}) ||
		!reflect.DeepEqual(scores, [][]string{{"score"}, {"87.5"}, {"92"}, {"70.25"}, {"249.75"}}) {
		t.Errorf("명단 %v, 점수 %v", names, scores)
	}
	rec := f.last(t)
	if !reflect.DeepEqual(rec.Columns, []string{"명단.name", "점수.score"}) ||
		!reflect.DeepEqual(rec.Sheets, []audit.Sheet{{Name: "명단", Rows: 3}, {Name: "점수", Rows: 3}}) || rec.Outcome != audit.OutcomeOK {
		t.Errorf("download record: columns %v, sheets %v, outcome %s", rec.Columns, rec.Sheets, rec.Outcome)
	}
}
