package dataset

import (
	"testing"
	"time"
)

func TestExamples(t *testing.T) {
	r0, r1 := Get(0), Get(1)
	want0 := Row{ID: 1, Name: "김민준", Email: "user0@example.com", SignupAt: time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC), NoteNull: true, Category: "standard"}
	if r0 != want0 {
		t.Errorf("row 0 = %+v, want %+v", r0, want0)
	}
	want1 := Row{ID: 2, Name: "이민준", Email: "user1@example.com", SignupAt: time.Date(2020, 1, 1, 0, 37, 0, 0, time.UTC), ScoreAvg: 79.19, Visits: 31, Active: true, Balance: 1047.29, Note: "R&D, priority 1", Category: "standard"}
	if r1 != want1 {
		t.Errorf("row 1 = %+v, want %+v", r1, want1)
	}
	if r := Get(13*3 + 3 + 0); r.Note == "" && !r.NoteNull {
		t.Errorf("row 42 note empty")
	}
	if got := Get(2).Note; got != `said "hi" #2` {
		t.Errorf("row 2 note = %q", got)
	}
}

func TestGeneratorNoAlloc(t *testing.T) {
	var g Generator
	g.Row(123456)
	if n := testing.AllocsPerRun(100, func() { g.Row(123457) }); n != 0 {
		t.Errorf("Generator.Row allocates %v times", n)
	}
}
