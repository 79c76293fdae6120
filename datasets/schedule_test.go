package datasets

import (
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"
)

const scheduleHead = `timezone: Asia/Seoul
connections:
  main: {url: "sqlite:x.db"}
privacy:
  purposes: {audit: 내부 감사}
  audit: {key_file: audit.key}
datasets:
  sales:
    sql: SELECT id FROM sales WHERE day BETWEEN :from AND :to AND branch = :branch AND n > :n
    params:
      - {name: from, type: date, required: true}
      - {name: to, type: date, required: true}
      - {name: branch, type: string}
      - {name: n, type: int, default: 0}
    roles: [manager, admin]
    pin:
      manager: {branch: {attr: branch}}
  members:
    personal: true
    sql: SELECT id, name FROM members WHERE joined >= :from
    params: [{name: from, type: date}]
    columns: [{name: id, type: int}, {name: name, personal: true, mask: name}]
    access: {admin: {all: full}}
`

func TestSchedulesGood(t *testing.T) {
	t.Setenv("HOOK_TOKEN", "s3cret")
	cfg, err := ParseConfig("datasets.yaml", []byte(scheduleHead+`    schedules:
      - name: weekly
        cron: "0 9 * * 1"
        email: privacy@example.com
        purpose: {category: audit, text: 주간 신규 회원 점검 (정기)}
        owner: {name: lee, roles: [admin]}
        params: {from: start of last week}
`+`  extra:
    sql: SELECT 1 AS x
    schedules:
      - name: daily
        cron: "@daily"
        timezone: UTC
        format: csv
        owner: {name: kim}
        webhook: ["https://hooks.example.com/x?token=${HOOK_TOKEN}"]
`))
	if err != nil {
		t.Fatal(err)
	}
	d, _ := cfg.Dataset("members")
	if len(d.Schedules) != 1 {
		t.Fatalf("schedules %+v", d.Schedules)
	}
	s := d.Schedules[0]
	if s.ID() != "members/weekly" || s.Timezone != "Asia/Seoul" || s.Format != "xlsx" || s.Principal() != "schedule:lee" ||
		!reflect.DeepEqual(s.Email, []string{"privacy@example.com"}) || s.Purpose != "audit" || s.Params["from"][0] != "start of last week" {
		t.Errorf("schedule %+v", s)
	}
	if next := s.Next(time.Date(2024, 12, 3, 0, 0, 0, 0, time.UTC)); !next.Equal(time.Date(2024, 12, 9, 0, 0, 0, 0, time.UTC)) {
		t.Errorf("next run %v", next)
	}
	e, _ := cfg.Dataset("extra")
	if s := e.Schedules[0]; s.Location != time.UTC || s.Webhooks[0] != "https://hooks.example.com/x?token=s3cret" || s.Format != "csv" {
		t.Errorf("schedule %+v", s)
	}
}

func TestSchedulesBad(t *testing.T) {
	_, err := ParseConfig("datasets.yaml", []byte(scheduleHead+`    schedules:
      - name: weekly
        cron: "0 9 * * 1"
        owner: {name: lee, roles: [manager]}
        email: [privacy@example.com]
        attach: true
  other:
    sql: SELECT 1 AS x WHERE :d >= '2000-01-01'
    params: [{name: d, type: date}]
    schedules:
      - name: bad cron
        cron: "61 * * * *"
        owner: {name: kim}
        email: [kim@example.com]
      - name: rel
        cron: "@every 1h"
        owner: {name: kim}
        params: {d: start of last fortnight, nope: 1}
        email: ["Kim <kim@example.com>"]
        webhook: [ftp://x.example.com/]
        colour: red
      - name: lit
        cron: "@monthly"
        owner: {name: kim}
        params: {d: "2024-13-01"}
      - name: lit
        cron: "@monthly"
        owner: {name: kim}
        webhook: [https://a.example.com/]
`))
	var es ConfigErrors
	if !errors.As(err, &es) {
		t.Fatalf("err %v", err)
	}
	got := map[string]int{}
	for _, e := range es {
		got[e.Dataset+" "+e.Field] = e.Line
	}
	want := map[string]int{
		"members schedules[0].purpose":   25, // no purpose: the schedule's line
		"members schedules[0].attach":    29,
		"other schedules[0].name":        34,
		"other schedules[0].cron":        35,
		"other schedules[1].cron":        39,
		"other schedules[1].params.d":    41, // resolved though the cron is at fault
		"other schedules[1].params.nope": 41,
		"other schedules[1].email[0]":    42,
		"other schedules[1].webhook[0]":  43,
		"other schedules[1].colour":      44,
		"other schedules[2].email":       45,
		"other schedules[2].params.d":    48, // a literal that is no date, for the next run
		"other schedules[3].name":        49, // twice
	}
	for k, line := range want {
		if l, ok := got[k]; !ok {
			t.Errorf("no error for %s", k)
		} else if l != line {
			t.Errorf("%s at line %d, want %d", k, l, line)
		}
	}
	if t.Failed() {
		t.Log(err)
	}
	if !strings.Contains(err.Error(), "datasets.yaml:35: dataset \"other\": schedules[0].cron: cron expression \"61 * * * *\"") {
		t.Errorf("message:\n%v", err)
	}
}

// TestSchedulesOwner: the owner must be allowed by the dataset's roles,
// and have the attributes its pins need.
func TestSchedulesOwner(t *testing.T) {
	head := strings.Replace(scheduleHead, "  members:\n", `    schedules:
      - name: clerk
        cron: "@monthly"
        owner: {name: x, roles: [clerk]}
        email: [x@example.com]
        params: {from: start of last month, to: end of last month}
      - name: nobranch
        cron: "@monthly"
        owner: {name: y, roles: [manager]}
        email: [y@example.com]
        params: {from: start of last month, to: end of last month}
      - name: seoul
        cron: "@monthly"
        owner: {name: z, roles: [manager], attrs: {branch: 서울}}
        email: [z@example.com]
        params: {from: start of last month, to: end of last month}
  members:
`, 1)
	_, err := ParseConfig("datasets.yaml", []byte(head))
	var es ConfigErrors
	if !errors.As(err, &es) {
		t.Fatalf("err %v", err)
	}
	var fields []string
	for _, e := range es {
		fields = append(fields, e.Field)
	}
	if want := []string{"schedules[0].owner.roles", "schedules[1].owner.attrs"}; !reflect.DeepEqual(fields, want) {
		t.Errorf("errors at %v, want %v:\n%v", fields, want, err)
	}
}
