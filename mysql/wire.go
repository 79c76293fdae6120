package mysql

// The text protocol's result sets, read from the socket by this package.
//
// go-sql-driver hands out a row only as []driver.Value, boxing every value
// in an interface (an allocation each), and parses numbers into values the
// source then converts again. On a connection the driver set up in plain
// text (no TLS, no compression), the source sends COM_QUERY itself and
// reads the result straight from the socket's read buffer into
// exportd.Value: no allocation per row. The driver still opens the
// connection (handshake, authentication, session variables), runs the
// other statements on it and closes it; between two commands the
// connection is idle and its buffer empty, so either may send the next.
//
// Protocol: https://mariadb.com/kb/en/clientserver-protocol/ and
// https://dev.mysql.com/doc/dev/mysql-server/latest/PAGE_PROTOCOL.html

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"time"

	"github.com/exportd/exportd"
	"github.com/go-sql-driver/mysql"
)

const (
	comQuery = 0x03

	maxPayload = 1<<24 - 1 // a payload this long continues in the next packet

	pktOK    = 0x00
	pktEOF   = 0xfe
	pktErr   = 0xff
	pktInfil = 0xfb // LOCAL INFILE request
	lenNull  = 0xfb // a NULL value in a text row

	statusMoreResults       = 0x0008
	statusNoBackslashEscape = 0x0200

	flagUnsigned = 0x0020
	flagEnum     = 0x0100
	flagSet      = 0x0800

	binaryCharset = 63
)

// Column types of the protocol.
const (
	typeDecimal    = 0x00
	typeTiny       = 0x01
	typeShort      = 0x02
	typeLong       = 0x03
	typeFloat      = 0x04
	typeDouble     = 0x05
	typeNULL       = 0x06
	typeTimestamp  = 0x07
	typeLongLong   = 0x08
	typeInt24      = 0x09
	typeDate       = 0x0a
	typeTime       = 0x0b
	typeDateTime   = 0x0c
	typeYear       = 0x0d
	typeNewDate    = 0x0e
	typeVarChar    = 0x0f
	typeBit        = 0x10
	typeVector     = 0xf2
	typeJSON       = 0xf5
	typeNewDecimal = 0xf6
	typeEnum       = 0xf7
	typeSet        = 0xf8
	typeTinyBLOB   = 0xf9
	typeMediumBLOB = 0xfa
	typeLongBLOB   = 0xfb
	typeBLOB       = 0xfc
	typeVarString  = 0xfd
	typeString     = 0xfe
	typeGeometry   = 0xff
)

// errMalformed is a packet that does not parse.
var errMalformed = errors.New("malformed packet")

// wire reads and writes the packets of one connection's socket.
type wire struct {
	c       *bufferedConn
	r       *bufio.Reader
	seq     byte
	pending int    // bytes of the last packet still in r, dropped before the next
	big     []byte // a packet larger than r's buffer, assembled
	status  uint16 // the server's status flags from its last OK or EOF packet
}

func newWire(c *bufferedConn) *wire { return &wire{c: c, r: c.r} }

// writeQuery sends COM_QUERY with text.
func (w *wire) writeQuery(text string) error {
	w.drop()
	payload := 1 + len(text)
	b := make([]byte, 0, payload+4*(payload/maxPayload+1))
	w.seq = 0
	rest := append([]byte{comQuery}, text...)
	for {
		n := min(len(rest), maxPayload)
		b = append(b, byte(n), byte(n>>8), byte(n>>16), w.seq)
		b = append(b, rest[:n]...)
		w.seq++
		rest = rest[n:]
		if n < maxPayload {
			break
		}
	}
	if t := w.c.writeTimeout; t > 0 {
		if err := w.c.SetWriteDeadline(time.Now().Add(t)); err != nil {
			return err
		}
	}
	_, err := w.c.Write(b)
	return err
}

// drop discards what is left of the last packet read.
func (w *wire) drop() {
	if w.pending > 0 {
		w.r.Discard(w.pending)
		w.pending = 0
	}
}

// next returns the payload of the next packet, never empty. It is a view
// of the read buffer, valid until the next call.
func (w *wire) next() ([]byte, error) {
	w.drop()
	n, err := w.header()
	if err != nil {
		return nil, err
	}
	if n == 0 {
		return nil, errMalformed // only ends a payload of 2^24-1 bytes, read below
	}
	if n < maxPayload && 4+n <= w.r.Size() {
		p, err := w.r.Peek(4 + n)
		if err != nil {
			return nil, unexpected(err)
		}
		w.pending = 4 + n
		return p[4:], nil
	}
	// A payload larger than the buffer, or continued in the next packets.
	w.big = w.big[:0]
	for {
		w.r.Discard(4)
		start := len(w.big)
		w.big = slices.Grow(w.big, n)[:start+n]
		if _, err := io.ReadFull(w.r, w.big[start:]); err != nil {
			return nil, unexpected(err)
		}
		if n < maxPayload {
			return w.big, nil
		}
		if n, err = w.header(); err != nil {
			return nil, err
		}
	}
}

// header peeks at the next packet's header and returns its payload length.
func (w *wire) header() (int, error) {
	h, err := w.r.Peek(4)
	if err != nil {
		return 0, unexpected(err)
	}
	if h[3] != w.seq {
		return 0, fmt.Errorf("packet %d out of sequence, want %d", h[3], w.seq)
	}
	w.seq++
	return int(h[0]) | int(h[1])<<8 | int(h[2])<<16, nil
}

// unexpected turns the end of the stream in the middle of a result into
// io.ErrUnexpectedEOF.
func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// wireColumn is a result column as the server describes it.
type wireColumn struct {
	name      string
	fieldType byte
	flags     uint16
	charset   byte
}

// readResult sends text and reads the result's header and column
// definitions. A statement without a result set returns no columns.
func (w *wire) readResult(text string) ([]wireColumn, error) {
	if err := w.writeQuery(text); err != nil {
		return nil, err
	}
	p, err := w.next()
	if err != nil {
		return nil, err
	}
	switch p[0] {
	case pktErr:
		return nil, errorPacket(p)
	case pktOK:
		w.okStatus(p)
		return nil, nil
	case pktInfil:
		return nil, errors.New("LOAD DATA LOCAL INFILE is not supported")
	}
	count, _, ok := lenInt(p)
	if !ok || count == 0 || count > math.MaxUint16 {
		return nil, errMalformed
	}
	cols := make([]wireColumn, count)
	for i := range cols {
		p, err := w.next()
		if err != nil {
			return nil, err
		}
		if cols[i], err = columnDefinition(p); err != nil {
			return nil, err
		}
	}
	return cols, nil
}

// afterColumns reads the packet after the column definitions. Without
// CLIENT_DEPRECATE_EOF it is an EOF packet (5 bytes), skipped; with it, the
// first row or the result's final OK packet (never 5 bytes long: a row
// starting with 0xfe is over 16 MiB, an OK packet at least 7 bytes), kept
// for nextRow.
func (w *wire) afterColumns() ([]byte, error) {
	p, err := w.next()
	if err != nil {
		return nil, err
	}
	if p[0] == pktEOF && len(p) == 5 {
		w.status = binary.LittleEndian.Uint16(p[3:])
		return nil, nil
	}
	return p, nil
}

// end reports whether p is the packet that ends a result (EOF, or OK with
// an EOF header), and reads the server's status from it.
func (w *wire) end(p []byte) bool {
	if p[0] != pktEOF || len(p) >= maxPayload {
		return false
	}
	if cap(w.big) > readBuffer {
		w.big = nil // a pooled connection keeps no large row
	}
	if len(p) == 5 {
		w.status = binary.LittleEndian.Uint16(p[3:])
	} else {
		w.okStatus(p)
	}
	return true
}

// okStatus reads the status flags of an OK packet.
func (w *wire) okStatus(p []byte) {
	_, n, ok := lenInt(p[1:]) // affected rows
	if !ok {
		return
	}
	_, m, ok := lenInt(p[1+n:]) // last insert id
	if !ok || len(p) < 1+n+m+2 {
		return
	}
	w.status = binary.LittleEndian.Uint16(p[1+n+m:])
}

// errorPacket returns the error an ERR packet carries, as the driver does.
func errorPacket(p []byte) error {
	if len(p) < 3 {
		return errMalformed
	}
	e := &mysql.MySQLError{Number: binary.LittleEndian.Uint16(p[1:3])}
	pos := 3
	if len(p) >= 9 && p[3] == '#' {
		copy(e.SQLState[:], p[4:9])
		pos = 9
	}
	e.Message = string(p[pos:])
	return e
}

// lenInt reads a length-encoded integer; n is its size in bytes.
func lenInt(p []byte) (v uint64, n int, ok bool) {
	if len(p) == 0 {
		return 0, 0, false
	}
	switch c := p[0]; {
	case c < 0xfb:
		return uint64(c), 1, true
	case c == 0xfc && len(p) >= 3:
		return uint64(p[1]) | uint64(p[2])<<8, 3, true
	case c == 0xfd && len(p) >= 4:
		return uint64(p[1]) | uint64(p[2])<<8 | uint64(p[3])<<16, 4, true
	case c == 0xfe && len(p) >= 9:
		return binary.LittleEndian.Uint64(p[1:]), 9, true
	}
	return 0, 0, false
}

// lenString reads a length-encoded string; n is the bytes it took.
func lenString(p []byte) (s []byte, n int, ok bool) {
	l, n, ok := lenInt(p)
	if !ok || l > uint64(len(p)-n) {
		return nil, 0, false
	}
	return p[n : n+int(l)], n + int(l), true
}

// columnDefinition parses a ColumnDefinition41 packet.
func columnDefinition(p []byte) (wireColumn, error) {
	pos := 0
	var name []byte
	for i := range 6 { // catalog, schema, table, org_table, name, org_name
		s, n, ok := lenString(p[pos:])
		if !ok {
			return wireColumn{}, errMalformed
		}
		if i == 4 {
			name = s
		}
		pos += n
	}
	pos++ // length of the fixed fields, 0x0c
	if len(p) < pos+10 {
		return wireColumn{}, errMalformed
	}
	return wireColumn{
		name:      string(name),
		charset:   p[pos], // the collation's low byte, as the driver reads it
		fieldType: p[pos+6],
		flags:     binary.LittleEndian.Uint16(p[pos+7:]),
	}, nil
}

// typeName is the column's type as go-sql-driver names it
// (ColumnTypeDatabaseTypeName), which Describe reports.
func (c wireColumn) typeName() string {
	unsigned := c.flags&flagUnsigned != 0
	binaryCS := c.charset == binaryCharset
	pick := func(cond bool, yes, no string) string {
		if cond {
			return yes
		}
		return no
	}
	switch c.fieldType {
	case typeBit:
		return "BIT"
	case typeBLOB:
		return pick(binaryCS, "BLOB", "TEXT")
	case typeDate, typeNewDate:
		return "DATE"
	case typeDateTime:
		return "DATETIME"
	case typeDecimal, typeNewDecimal:
		return "DECIMAL"
	case typeDouble:
		return "DOUBLE"
	case typeEnum:
		return "ENUM"
	case typeFloat:
		return "FLOAT"
	case typeGeometry:
		return "GEOMETRY"
	case typeInt24:
		return pick(unsigned, "UNSIGNED MEDIUMINT", "MEDIUMINT")
	case typeJSON:
		return "JSON"
	case typeLong:
		return pick(unsigned, "UNSIGNED INT", "INT")
	case typeLongBLOB:
		return pick(binaryCS, "LONGBLOB", "LONGTEXT")
	case typeLongLong:
		return pick(unsigned, "UNSIGNED BIGINT", "BIGINT")
	case typeMediumBLOB:
		return pick(binaryCS, "MEDIUMBLOB", "MEDIUMTEXT")
	case typeNULL:
		return "NULL"
	case typeSet:
		return "SET"
	case typeShort:
		return pick(unsigned, "UNSIGNED SMALLINT", "SMALLINT")
	case typeString:
		switch {
		case c.flags&flagEnum != 0:
			return "ENUM"
		case c.flags&flagSet != 0:
			return "SET"
		}
		return pick(binaryCS, "BINARY", "CHAR")
	case typeTime:
		return "TIME"
	case typeTimestamp:
		return "TIMESTAMP"
	case typeTiny:
		return pick(unsigned, "UNSIGNED TINYINT", "TINYINT")
	case typeTinyBLOB:
		return pick(binaryCS, "TINYBLOB", "TINYTEXT")
	case typeVarChar, typeVarString:
		return pick(binaryCS, "VARBINARY", "VARCHAR")
	case typeYear:
		return "YEAR"
	case typeVector:
		return "VECTOR"
	}
	return ""
}

// decodeRow converts a text row into dst: each value a length-encoded
// string (0xfb for NULL), converted by its column's kind. Text values are
// views of p.
func decodeRow(p []byte, kinds []kind, dst []exportd.Value, loc *time.Location, scratch []byte) error {
	pos := 0
	for i, k := range kinds {
		if pos >= len(p) {
			return errMalformed
		}
		if p[pos] == lenNull {
			dst[i] = exportd.Value{}
			pos++
			continue
		}
		var b []byte
		if c := p[pos]; c < 0xfb && pos+1+int(c) <= len(p) {
			b = p[pos+1 : pos+1+int(c)]
			pos += 1 + int(c)
		} else {
			s, n, ok := lenString(p[pos:])
			if !ok {
				return errMalformed
			}
			b = s
			pos += n
		}
		var err error
		switch k {
		case kindInt:
			if n, ok := atoi(b); ok {
				dst[i] = exportd.Value{Kind: exportd.KindInt, I: n}
				continue
			}
		case kindString:
			dst[i] = exportd.Value{Kind: exportd.KindString, S: str(b)}
			continue
		case kindFloat32:
			// As the driver did: the text read as a float32, its
			// shortest text read as a float64 (0.1, not
			// 0.10000000149011612).
			var f float64
			if f, err = strconv.ParseFloat(str(b), 32); err != nil {
				return fmt.Errorf("column %d: %w", i+1, err)
			}
			b = strconv.AppendFloat(scratch[:0], f, 'g', -1, 32)
			k = kindFloat
		}
		if dst[i], err = convertText(k, b, loc); err != nil {
			return fmt.Errorf("column %d: %w", i+1, err)
		}
	}
	if pos != len(p) {
		return errMalformed
	}
	return nil
}

// atoi parses the decimal integers MySQL sends (an optional '-', up to 18
// digits); it reports false for anything else, left to strconv.
func atoi(b []byte) (int64, bool) {
	neg := len(b) > 0 && b[0] == '-'
	if neg {
		b = b[1:]
	}
	if len(b) == 0 || len(b) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	if neg {
		n = -n
	}
	return n, true
}

// appendLiteral appends v as an SQL literal, as go-sql-driver's client-side
// interpolation writes it: strings quoted with the connection's escaping
// rules (backslash escapes unless NO_BACKSLASH_ESCAPES is in force).
func appendLiteral(b []byte, v any, noBackslash bool) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return append(b, "NULL"...), nil
	case int64:
		return strconv.AppendInt(b, v, 10), nil
	case uint64:
		return strconv.AppendUint(b, v, 10), nil
	case float64:
		return strconv.AppendFloat(b, v, 'g', -1, 64), nil
	case bool:
		if v {
			return append(b, '1'), nil
		}
		return append(b, '0'), nil
	case string:
		b = append(b, '\'')
		for i := 0; i < len(v); i++ {
			c := v[i]
			if noBackslash {
				if c == '\'' {
					b = append(b, '\'')
				}
				b = append(b, c)
				continue
			}
			switch c {
			case 0:
				b = append(b, '\\', '0')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case 0x1a:
				b = append(b, '\\', 'Z')
			case '\'', '"', '\\':
				b = append(b, '\\', c)
			default:
				b = append(b, c)
			}
		}
		return append(b, '\''), nil
	}
	return nil, fmt.Errorf("parameter of type %T", v)
}
