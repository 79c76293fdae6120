package format

import (
	"math/rand/v2"
	"testing"
	"time"
)

// appendDateTime writes what time.Time's AppendFormat writes, for every
// year, zone and fraction.
func TestAppendDateTime(t *testing.T) {
	kst := time.FixedZone("KST", 9*3600)
	r := rand.New(rand.NewPCG(1, 2))
	times := []time.Time{
		{}, time.Date(1, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(9999, 12, 31, 23, 59, 59, 999999999, time.UTC),
		time.Date(10000, 1, 1, 0, 0, 0, 0, time.UTC), time.Date(-1, 1, 1, 0, 0, 0, 0, time.UTC),
		time.Date(999, 2, 3, 4, 5, 6, 100, time.UTC), time.Date(2024, 2, 29, 23, 59, 59, 120000000, kst),
		time.Date(2020, 1, 1, 0, 0, 0, 1, time.Local),
	}
	for range 100000 {
		tm := time.Unix(r.Int64N(400_000_000_000)-62_135_596_800, 0).UTC()
		switch r.IntN(4) {
		case 1:
			tm = tm.Add(time.Duration(r.IntN(1e9)))
		case 2:
			tm = tm.Add(time.Duration(r.IntN(1e6)) * time.Microsecond).In(kst)
		case 3:
			tm = tm.Add(time.Duration(r.IntN(1e3)) * time.Millisecond)
		}
		times = append(times, tm)
	}
	for _, tm := range times {
		want := tm.Format("2006-01-02 15:04:05.999999999")
		if got := string(appendDateTime([]byte("x"), tm)); got != "x"+want {
			t.Fatalf("%v: %q, want %q", tm, got, "x"+want)
		}
	}
}
