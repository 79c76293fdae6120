package xlsx

import (
	"math/rand/v2"
	"strconv"
	"testing"
)

// TestAppendSerial compares appendSerial with strconv's shortest form for
// every second of the day on days at both ends and in the middle of the
// range it computes itself, on days just outside it, and with fractions
// of a second (strconv's path).
func TestAppendSerial(t *testing.T) {
	check := func(serial, secs int64, ns int) {
		f := float64(serial) + (float64(secs)+float64(ns)/1e9)/86400
		want := strconv.AppendFloat(nil, f, 'f', -1, 64)
		if got := appendSerial(nil, f, serial, ns); string(got) != string(want) {
			t.Fatalf("serial %d, %d s, %d ns: %s, strconv %s", serial, secs, ns, got, want)
		}
	}
	for _, serial := range []int64{1<<15 - 1, 1 << 15, 1<<15 + 1, 43831, 46000, 54321, 1<<16 - 1, 1 << 16, 2958465} {
		for secs := int64(1); secs < 86400; secs++ {
			check(serial, secs, 0)
		}
	}
	r := rand.New(rand.NewPCG(3, 4))
	for range 200_000 {
		check(int64(61+r.IntN(2958465-61)), int64(r.IntN(86400)), 0)
		check(int64(1<<15+r.IntN(1<<15)), int64(r.IntN(86400)), r.IntN(1e9))
	}
}

func BenchmarkAppendSerial(b *testing.B) {
	buf := make([]byte, 0, 32)
	for i := range b.N {
		secs := int64(i*37*60) % 86400
		f := float64(46000) + float64(secs)/86400
		buf = appendSerial(buf[:0], f, 46000, 0)
	}
}

func BenchmarkAppendSerialStrconv(b *testing.B) {
	buf := make([]byte, 0, 32)
	for i := range b.N {
		secs := int64(i*37*60) % 86400
		f := float64(46000) + float64(secs)/86400
		buf = strconv.AppendFloat(buf[:0], f, 'f', -1, 64)
	}
}
