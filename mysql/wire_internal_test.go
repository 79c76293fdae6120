package mysql

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/exportd/exportd"
)

// packet frames payload as packets from sequence number seq on, split at
// 2^24-1 bytes as the server splits it.
func packet(seq byte, payload []byte) []byte {
	var b []byte
	for {
		n := min(len(payload), maxPayload)
		b = append(b, byte(n), byte(n>>8), byte(n>>16), seq)
		b = append(b, payload[:n]...)
		payload = payload[n:]
		seq++
		if n < maxPayload {
			return b
		}
	}
}

func testWire(stream []byte) *wire {
	return &wire{r: bufio.NewReaderSize(bytes.NewReader(stream), readBuffer)}
}

// Packets of every size come back whole: within the read buffer, larger
// than it, and continued over several packets (2^24-1 bytes and more, and
// exactly 2^24-1, which an empty packet ends).
func TestWireNext(t *testing.T) {
	sizes := []int{1, 250, readBuffer - 4, readBuffer - 3, readBuffer, 200_000, maxPayload - 1, maxPayload, maxPayload + 1, 2*maxPayload + 7}
	var stream []byte
	var want [][]byte
	seq := byte(1)
	for i, n := range sizes {
		p := bytes.Repeat([]byte{byte('a' + i)}, n)
		if n > 0 {
			p[0], p[n-1] = byte(i), byte(n)
		}
		stream = append(stream, packet(seq, p)...)
		seq += byte(n/maxPayload + 1)
		want = append(want, p)
	}
	w := testWire(stream)
	w.seq = 1
	for i, p := range want {
		got, err := w.next()
		if err != nil || !bytes.Equal(got, p) {
			t.Fatalf("packet %d (%d bytes): got %d bytes, %v", i, len(p), len(got), err)
		}
	}
	if _, err := w.next(); err != io.ErrUnexpectedEOF {
		t.Errorf("after the last packet: %v, want io.ErrUnexpectedEOF", err)
	}

	w = testWire(packet(1, nil))
	w.seq = 1
	if _, err := w.next(); err != errMalformed {
		t.Errorf("an empty packet: %v", err)
	}

	w = testWire(packet(5, []byte("x")))
	w.seq = 1
	if _, err := w.next(); err == nil || !strings.Contains(err.Error(), "sequence") {
		t.Errorf("a packet out of sequence: %v", err)
	}
	w = testWire(packet(1, []byte("hello"))[:7])
	w.seq = 1
	if _, err := w.next(); err != io.ErrUnexpectedEOF {
		t.Errorf("a packet cut short: %v", err)
	}
}

// A text row's values: every length encoding, NULL, and rows that do not
// parse.
func TestDecodeRow(t *testing.T) {
	long := strings.Repeat("김", 100)   // 300 bytes: 0xfc length
	huge := strings.Repeat("x", 70000) // 0xfd length
	row := []byte{2, '4', '2', lenNull, 0xfc, 44, 1}
	row = append(row, long...)
	row = append(row, 0xfd, byte(len(huge)), byte(len(huge)>>8), byte(len(huge)>>16))
	row = append(row, huge...)
	row = append(row, 3, '0', '.', '1', 4, '-', '1', '.', '5')
	row = append(row, 19)
	row = append(row, "2024-02-29 23:59:59"...)
	kinds := []kind{kindInt, kindString, kindString, kindString, kindFloat32, kindDecimal, kindDateTime}
	dst := make([]exportd.Value, len(kinds))
	if err := decodeRow(row, kinds, dst, time.UTC, nil); err != nil {
		t.Fatal(err)
	}
	want := []exportd.Value{exportd.Int(42), exportd.Null(), exportd.String(long), exportd.String(huge), exportd.Float(0.1),
		exportd.Decimal("-1.5"), exportd.DateTime(time.Date(2024, 2, 29, 23, 59, 59, 0, time.UTC))}
	for i := range want {
		if dst[i] != want[i] {
			t.Errorf("value %d: %v, want %v", i, dst[i], want[i])
		}
	}
	for _, bad := range [][]byte{
		{},                    // no value
		{3, '1', '2'},         // shorter than its length
		{1, '1', 1, '2', 0},   // a value too many
		{0xfc, 1},             // a length cut short
		{1, 'x', 1, '2', 1},   // not an integer (and cut short)
		{0xfe, 1, 2, 3, 4, 5}, // an 8-byte length cut short
	} {
		if err := decodeRow(bad, []kind{kindInt, kindInt}, dst, time.UTC, nil); err == nil {
			t.Errorf("% x: no error", bad)
		}
	}
	if err := decodeRow([]byte{1, 'x'}, []kind{kindInt}, dst, time.UTC, nil); err == nil {
		t.Error("an integer column's 'x': no error")
	}
}

func TestAppendLiteral(t *testing.T) {
	for _, tt := range []struct {
		v           any
		noBackslash bool
		want        string
	}{
		{nil, false, "NULL"},
		{int64(-9223372036854775808), false, "-9223372036854775808"},
		{uint64(18446744073709551615), false, "18446744073709551615"},
		{0.1, false, "0.1"},
		{1e300, false, "1e+300"},
		{true, false, "1"},
		{false, false, "0"},
		{"it's \"q\" \\ \x00\n\r\x1a 김", false, `'it\'s \"q\" \\ \0\n\r\Z 김'`},
		{"it's \"q\" \\ \x00\n 김", true, "'it''s \"q\" \\ \x00\n 김'"},
	} {
		got, err := appendLiteral(nil, tt.v, tt.noBackslash)
		if err != nil || string(got) != tt.want {
			t.Errorf("appendLiteral(%#v, %v) = %s, %v; want %s", tt.v, tt.noBackslash, got, err, tt.want)
		}
	}
	if _, err := appendLiteral(nil, []int{1}, false); err == nil {
		t.Error("a []int: no error")
	}
}

func TestErrorPacket(t *testing.T) {
	p := append([]byte{pktErr, 0x3d, 0x04, '#'}, "42S02Table 'x' doesn't exist"...)
	err := errorPacket(p)
	var me interface{ Error() string }
	if !errors.As(err, &me) || err.Error() != "Error 1085 (42S02): Table 'x' doesn't exist" {
		t.Errorf("errorPacket: %v", err)
	}
}

// A query's text goes out as COM_QUERY packets split at 2^24-1 bytes,
// sequence numbers from 0, with an empty packet after one exactly that long.
func TestWriteQuery(t *testing.T) {
	for _, n := range []int{0, 10, maxPayload - 2, maxPayload - 1, maxPayload, 2*maxPayload + 5} {
		client, server := net.Pipe()
		w := &wire{c: &bufferedConn{Conn: client}}
		text := strings.Repeat("s", n)
		got := make(chan []byte, 1)
		go func() {
			b, _ := io.ReadAll(server)
			got <- b
		}()
		if err := w.writeQuery(text); err != nil {
			t.Fatal(err)
		}
		client.Close()
		b := <-got
		var payload []byte
		var seqs []byte
		for len(b) >= 4 {
			l := int(b[0]) | int(b[1])<<8 | int(b[2])<<16
			seqs = append(seqs, b[3])
			payload = append(payload, b[4:4+l]...)
			b = b[4+l:]
			if l < maxPayload {
				break
			}
		}
		wantPackets := (1+n)/maxPayload + 1
		if len(b) != 0 || len(seqs) != wantPackets || string(payload) != "\x03"+text {
			t.Errorf("%d bytes: %d packets (sequence %v), %d bytes left, payload ok %v; want %d packets",
				n, len(seqs), seqs, len(b), string(payload) == "\x03"+text, wantPackets)
		}
		for i, s := range seqs {
			if s != byte(i) {
				t.Errorf("%d bytes: packet %d has sequence number %d", n, i, s)
			}
		}
	}
}

// Whatever bytes the server sends, reading them as packets, a result's
// header, column definitions and rows returns an error or values, never
// a panic.
func FuzzWire(f *testing.F) {
	f.Add(packet(1, []byte{2, '4', '2', lenNull}))
	f.Add(append(packet(1, []byte{1}), packet(2, []byte{0xfe, 0, 0, 2, 0})...))
	f.Add(packet(1, []byte{pktErr, 1, 2, '#', 'H', 'Y', '0', '0', '0', 'x'}))
	f.Add(packet(1, []byte{0xfc, 0xff}))
	f.Fuzz(func(t *testing.T, stream []byte) {
		w := testWire(stream)
		w.seq = 1
		kinds := []kind{kindInt, kindString, kindFloat32, kindDateTime, kindBit, kindUint, kindBinary, kindDate}
		dst := make([]exportd.Value, len(kinds))
		for range 8 {
			p, err := w.next()
			if err != nil {
				return
			}
			if w.end(p) || p[0] == pktErr {
				_ = errorPacket(p)
				continue
			}
			_, _ = columnDefinition(p)
			_, _, _ = lenInt(p)
			_ = decodeRow(p, kinds, dst, time.UTC, make([]byte, 0, 32))
		}
	})
}
