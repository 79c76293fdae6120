package exportd

import (
	"testing"
	"time"
)

func TestAs(t *testing.T) {
	ts := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	tests := []struct {
		in   Value
		t    Type
		want Value
	}{
		{String("2024-05-06 07:08:09"), TypeDateTime, DateTime(ts)},
		{String("2024-05-06T07:08:09"), TypeDateTime, DateTime(ts)},
		{String("2024-05-06"), TypeDate, Date(time.Date(2024, 5, 6, 0, 0, 0, 0, time.UTC))},
		{String("not a date"), TypeDate, String("not a date")},
		{Int(1), TypeBool, Bool(true)},
		{Int(0), TypeBool, Bool(false)},
		{Int(2), TypeBool, Int(2)},
		{Int(3), TypeFloat, Float(3)},
		{Int(1 << 60), TypeFloat, Int(1 << 60)},
		{String("12"), TypeInt, Int(12)},
		{String("123456789012345678901234"), TypeInt, Decimal("123456789012345678901234")},
		{String("-1.50"), TypeDecimal, Decimal("-1.50")},
		{String("1e5"), TypeDecimal, String("1e5")},
		{Float(2.5), TypeString, String("2.5")},
		{Null(), TypeInt, Null()},
		{Float(4), TypeInt, Int(4)},
		{Float(4.5), TypeInt, Float(4.5)},
	}
	for _, tt := range tests {
		if got := tt.in.As(tt.t); got != tt.want {
			t.Errorf("%#v.As(%s) = %#v, want %#v", tt.in, tt.t, got, tt.want)
		}
	}
}
