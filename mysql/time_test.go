package mysql

import (
	"testing"
	"time"
)

// parseDateTime is a fast path for time.Parse: where it answers, it must
// answer as time.Parse does; it must answer for the forms MySQL sends.
func TestParseDateTime(t *testing.T) {
	for _, s := range []string{
		"2024-01-02", "2024-01-02 03:04:05", "2024-01-02 03:04:05.1", "2024-01-02 03:04:05.123456",
		"2024-01-02 03:04:05.123456789", "1000-01-01 00:00:00", "9999-12-31 23:59:59.999999", "0000-01-01",
		"2000-02-29", "1900-02-29", "2023-02-29 00:00:00", "2024-04-31", "2024-00-00", "2024-13-01",
		"2024-01-00", "2024-01-02 24:00:00", "2024-01-02 23:60:00", "2024-01-02 23:59:60",
		"2024-01-02 03:04:05.", "2024-01-02 03:04:05.1234567890", "2024-01-02T03:04:05", "2024-1-02",
		"2024-01-02 03:04", "-838:59:59", "", "20240102", "2024-01-02 03:04:05x", "2024-01-02 03:04:0x",
	} {
		layout := "2006-01-02 15:04:05.999999"
		if len(s) <= 10 {
			layout = time.DateOnly
		}
		want, err := time.Parse(layout, s)
		got, ok := parseDateTime([]byte(s))
		if ok && (err != nil || !got.Equal(want) || got.Location() != want.Location()) {
			t.Errorf("%q: got %v; time.Parse gives %v, %v", s, got, want, err)
		}
		if !ok && err == nil && (len(s) == 10 || len(s) >= 19 && len(s) <= 26) { // MySQL sends up to 6 digits
			t.Errorf("%q: not parsed; time.Parse gives %v", s, want)
		}
	}
}

func TestDaysIn(t *testing.T) {
	for y := 0; y <= 2400; y++ {
		for mo := 1; mo <= 12; mo++ {
			if got, want := daysIn(y, mo), time.Date(y, time.Month(mo)+1, 0, 0, 0, 0, 0, time.UTC).Day(); got != want {
				t.Fatalf("daysIn(%d, %d) = %d, want %d", y, mo, got, want)
			}
		}
	}
}
