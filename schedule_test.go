package exportd_test

import (
	"testing"
	"time"

	"github.com/exportd/exportd"
)

func TestResolveDate(t *testing.T) {
	seoul, err := time.LoadLocation("Asia/Seoul")
	if err != nil {
		t.Fatal(err)
	}
	// 00:30 KST on 1 December is still 30 November in UTC: in Seoul, last
	// month is November; in UTC it would be October.
	now := time.Date(2026, 11, 30, 15, 30, 0, 0, time.UTC)
	for _, c := range []struct {
		expr     string
		loc      *time.Location
		datetime bool
		want     string
	}{
		{"start of last month", seoul, false, "2026-11-01"},
		{"end of last month", seoul, false, "2026-11-30"},
		{"start of last month", time.UTC, false, "2026-10-01"},
		{"end of last month", time.UTC, false, "2026-10-31"},
		{"today", seoul, false, "2026-12-01"},
		{"yesterday", seoul, false, "2026-11-30"},
		{"Tomorrow", seoul, false, "2026-12-02"},
		{"start of this month", seoul, false, "2026-12-01"},
		{"end of this month", seoul, false, "2026-12-31"},
		{"start of this week", seoul, false, "2026-11-30"}, // 1 Dec 2026 is a Tuesday
		{"end of this week", seoul, false, "2026-12-06"},
		{"start of last week", seoul, false, "2026-11-23"},
		{"end of last week", seoul, false, "2026-11-29"},
		{"start of last year", seoul, false, "2025-01-01"},
		{"end of last year", seoul, false, "2025-12-31"},
		{"start of this year", seoul, false, "2026-01-01"},
		{"start of last quarter", seoul, false, "2026-07-01"},
		{"end of last quarter", seoul, false, "2026-09-30"},
		{"today - 7 days", seoul, false, "2026-11-24"},
		{"end of last month + 1 day", seoul, false, "2026-12-01"},
		{"start of this month - 1 month", seoul, false, "2026-11-01"},
		{"end of last month", seoul, true, "2026-11-30 23:59:59"},
		{"start of last month", seoul, true, "2026-11-01 00:00:00"},
		{"now", seoul, true, "2026-12-01 00:30:00"},
	} {
		got, ok, err := exportd.ResolveDate(c.expr, now, c.loc, c.datetime)
		if err != nil || !ok || got != c.want {
			t.Errorf("%q in %s: got %q %v %v, want %q", c.expr, c.loc, got, ok, err, c.want)
		}
	}
	// 31 March - 1 month is the end of February.
	if got, _, _ := exportd.ResolveDate("end of this month - 1 month", time.Date(2024, 3, 10, 0, 0, 0, 0, time.UTC), time.UTC, false); got != "2024-02-29" {
		t.Errorf("end of this month - 1 month in March 2024: %s", got)
	}
	if v, ok, err := exportd.ResolveDate("2024-01-01", now, seoul, false); ok || err != nil || v != "" {
		t.Errorf("a literal date: %q %v %v", v, ok, err)
	}
	for _, bad := range []string{"start of last fortnight", "today + 3 weeks ago", "now"} {
		if _, _, err := exportd.ResolveDate(bad, now, seoul, false); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestSchedulePrevNext(t *testing.T) {
	seoul, _ := time.LoadLocation("Asia/Seoul")
	s := &exportd.Schedule{Cron: "30 0 1 * *", Location: seoul}
	if err := s.Compile(); err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 6, 20, 0, 0, 0, time.UTC) // 7 Dec 05:00 KST
	if got, want := s.Prev(now), time.Date(2026, 12, 1, 0, 30, 0, 0, seoul); !got.Equal(want) {
		t.Errorf("prev %v, want %v", got, want)
	}
	if got, want := s.Next(now), time.Date(2027, 1, 1, 0, 30, 0, 0, seoul); !got.Equal(want) {
		t.Errorf("next %v, want %v", got, want)
	}
	tick := time.Date(2027, 1, 1, 0, 30, 0, 0, seoul)
	if got := s.Prev(tick); !got.Equal(tick) {
		t.Errorf("prev at a tick %v, want the tick", got)
	}
	for _, bad := range []string{"@every 1h", "61 * * * *", "CRON_TZ=UTC 0 0 * * *", ""} {
		if _, err := exportd.ParseCron(bad, seoul); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

// The README's table of relative dates, run at Tue 2024-12-03 09:00 KST.
func TestResolveDateREADME(t *testing.T) {
	seoul, _ := time.LoadLocation("Asia/Seoul")
	now := time.Date(2024, 12, 3, 9, 0, 0, 0, seoul)
	for expr, want := range map[string]string{
		"today": "2024-12-03", "yesterday": "2024-12-02",
		"start of last week": "2024-11-25", "end of last week": "2024-12-01",
		"start of last month": "2024-11-01", "end of last month": "2024-11-30",
		"start of this year": "2024-01-01", "end of last year": "2023-12-31",
		"start of last quarter": "2024-07-01", "today - 7 days": "2024-11-26",
	} {
		if got, _, err := exportd.ResolveDate(expr, now, seoul, false); got != want || err != nil {
			t.Errorf("%s: %s %v, want %s", expr, got, err, want)
		}
	}
}
