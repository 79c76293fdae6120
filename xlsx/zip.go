package xlsx

import (
	"bufio"
	"encoding/binary"
	"errors"
	"hash/crc32"
	"io"
	"time"

	"github.com/klauspost/compress/flate"
)

// ZIP record signatures and constants (APPNOTE.TXT 6.3.x).
const (
	sigLocal       = 0x04034b50
	sigDescriptor  = 0x08074b50
	sigCentral     = 0x02014b50
	sigEnd         = 0x06054b50
	sigEnd64       = 0x06064b50
	sigEnd64Loc    = 0x07064b50
	zipVersion45   = 45     // 4.5: ZIP64
	flagDescriptor = 0x0008 // bit 3: CRC and sizes follow the data
	methodDeflate  = 8
	max32          = 0xffffffff
	max16          = 0xffff
)

// zipEntry is what the central directory needs of one written entry.
type zipEntry struct {
	name         string
	offset       uint64
	csize, usize uint64
	crc          uint32
}

// countWriter counts the bytes written through it: the archive offset.
type countWriter struct {
	w *bufio.Writer
	n uint64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += uint64(n)
	return n, err
}

// zipWriter writes a ZIP archive strictly forward: every entry is deflated
// and followed by a data descriptor, so nothing is ever sought back. The
// layout is described in doc.go.
//
// Until compress is called, the deflate streams hold their data in stored
// blocks (deflate's uncompressed kind) and the output buffer is small: a
// workbook that has written only its leading parts, and flushes keep-
// alives while its export waits to run, holds a few KiB instead of a
// compressor's state (about a MiB). The first row calls compress; the
// entry open then goes on with compressed blocks in the same stream.
type zipWriter struct {
	dst     io.Writer
	bw      *bufio.Writer
	cw      countWriter
	fw      *flate.Writer
	level   int
	deflate bool // compress has been called
	entries []zipEntry
	open    bool
	cur     zipEntry
	dosTime uint16
	dosDate uint16
	scratch [128]byte
	err     error
}

// Output buffer sizes: before compress (the leading parts and keep-
// alives) and after.
const (
	storedBufSize  = 2 << 10
	deflateBufSize = 32 << 10
)

func newZipWriter(w io.Writer, level int, mod time.Time) *zipWriter {
	z := &zipWriter{dst: w, bw: bufio.NewWriterSize(w, storedBufSize), level: level}
	z.cw.w = z.bw
	z.dosDate, z.dosTime = dosDateTime(mod)
	return z
}

// compress makes the entry open and every later one deflate their data,
// with a larger output buffer.
func (z *zipWriter) compress() error {
	if z.err != nil || z.deflate {
		return z.err
	}
	z.deflate = true
	if err := z.bw.Flush(); err != nil {
		return z.fail(err)
	}
	z.bw = bufio.NewWriterSize(z.dst, deflateBufSize)
	z.cw.w = z.bw
	if z.open {
		// The stream so far ends on a byte boundary after a stored block
		// that is not the last: a new compressor's blocks go on from there
		// (they refer to no earlier data).
		return z.startDeflate()
	}
	return nil
}

// startDeflate starts (or restarts) the compressor on the open entry.
func (z *zipWriter) startDeflate() error {
	if z.fw == nil {
		fw, err := flate.NewWriter(&z.cw, z.level)
		if err != nil {
			return z.fail(err)
		}
		z.fw = fw
		return nil
	}
	z.fw.Reset(&z.cw)
	return nil
}

// Stored deflate blocks (RFC 1951 3.2.4), for the data before compress:
// a block header on a byte boundary (BFINAL, BTYPE 00 and padding), then
// LEN and NLEN. An empty block that is not the last inflates to nothing
// and is what a sync flush writes; an empty last block ends the stream.
var (
	emptyStored     = []byte{0x00, 0x00, 0x00, 0xff, 0xff}
	emptyStoredLast = []byte{0x01, 0x00, 0x00, 0xff, 0xff}
)

// writeStored writes p as stored blocks of at most 65,535 bytes.
func (z *zipWriter) writeStored(p []byte) error {
	for len(p) > 0 {
		n := min(len(p), max16)
		h := [5]byte{0, byte(n), byte(n >> 8), ^byte(n), ^byte(n >> 8)}
		if _, err := z.cw.Write(h[:]); err != nil {
			return z.fail(err)
		}
		if _, err := z.cw.Write(p[:n]); err != nil {
			return z.fail(err)
		}
		p = p[n:]
	}
	return nil
}

func dosDateTime(t time.Time) (date, clock uint16) {
	if t.Year() < 1980 {
		return 1<<5 | 1, 0 // 1980-01-01
	}
	if t.Year() > 2107 {
		t = time.Date(2107, 12, 31, 23, 59, 58, 0, time.UTC)
	}
	date = uint16(t.Day() + int(t.Month())<<5 + (t.Year()-1980)<<9)
	clock = uint16(t.Second()/2 + t.Minute()<<5 + t.Hour()<<11)
	return date, clock
}

// begin writes the local header of a new deflated entry.
func (z *zipWriter) begin(name string) error {
	if z.err != nil {
		return z.err
	}
	if z.open {
		return errors.New("xlsx: zip entry already open")
	}
	z.cur = zipEntry{name: name, offset: z.cw.n}
	b := z.scratch[:0]
	b = binary.LittleEndian.AppendUint32(b, sigLocal)
	b = binary.LittleEndian.AppendUint16(b, zipVersion45)
	b = binary.LittleEndian.AppendUint16(b, flagDescriptor)
	b = binary.LittleEndian.AppendUint16(b, methodDeflate)
	b = binary.LittleEndian.AppendUint16(b, z.dosTime)
	b = binary.LittleEndian.AppendUint16(b, z.dosDate)
	b = binary.LittleEndian.AppendUint32(b, 0) // CRC-32: in the descriptor
	b = binary.LittleEndian.AppendUint32(b, 0) // compressed size: in the descriptor
	b = binary.LittleEndian.AppendUint32(b, 0) // uncompressed size: in the descriptor
	b = binary.LittleEndian.AppendUint16(b, uint16(len(name)))
	b = binary.LittleEndian.AppendUint16(b, 0) // no extra field
	if _, err := z.cw.Write(b); err != nil {
		return z.fail(err)
	}
	if _, err := io.WriteString(&z.cw, name); err != nil {
		return z.fail(err)
	}
	z.open = true
	if z.deflate {
		return z.startDeflate()
	}
	return nil
}

func (z *zipWriter) fail(err error) error {
	if z.err == nil {
		z.err = err
	}
	return z.err
}

// write deflates p into the open entry.
func (z *zipWriter) write(p []byte) error {
	if z.err != nil {
		return z.err
	}
	z.cur.crc = crc32.Update(z.cur.crc, crc32.IEEETable, p)
	z.cur.usize += uint64(len(p))
	if !z.deflate {
		return z.writeStored(p)
	}
	if _, err := z.fw.Write(p); err != nil {
		return z.fail(err)
	}
	return nil
}

// flush pushes every byte so far to the destination; inside an entry this
// adds an empty deflate block (00 00 ff ff), which inflates to nothing.
func (z *zipWriter) flush() error {
	if z.err != nil {
		return z.err
	}
	switch {
	case z.open && z.deflate:
		if err := z.fw.Flush(); err != nil {
			return z.fail(err)
		}
	case z.open:
		if _, err := z.cw.Write(emptyStored); err != nil {
			return z.fail(err)
		}
	}
	if err := z.bw.Flush(); err != nil {
		return z.fail(err)
	}
	return nil
}

// end finishes the open entry and writes its data descriptor: 16 bytes
// (4-byte sizes), or 24 bytes (8-byte sizes) once a size has reached 4 GiB.
func (z *zipWriter) end() error {
	if z.err != nil {
		return z.err
	}
	if z.deflate {
		if err := z.fw.Close(); err != nil {
			return z.fail(err)
		}
	} else if _, err := z.cw.Write(emptyStoredLast); err != nil {
		return z.fail(err)
	}
	z.open = false
	e := &z.cur
	e.csize = z.cw.n - e.offset - 30 - uint64(len(e.name))
	b := z.scratch[:0]
	b = binary.LittleEndian.AppendUint32(b, sigDescriptor)
	b = binary.LittleEndian.AppendUint32(b, e.crc)
	if e.csize >= max32 || e.usize >= max32 {
		b = binary.LittleEndian.AppendUint64(b, e.csize)
		b = binary.LittleEndian.AppendUint64(b, e.usize)
	} else {
		b = binary.LittleEndian.AppendUint32(b, uint32(e.csize))
		b = binary.LittleEndian.AppendUint32(b, uint32(e.usize))
	}
	if _, err := z.cw.Write(b); err != nil {
		return z.fail(err)
	}
	z.entries = append(z.entries, *e)
	return nil
}

// close writes the central directory and the end records, then flushes.
func (z *zipWriter) close() error {
	if z.err != nil {
		return z.err
	}
	if z.open {
		if err := z.end(); err != nil {
			return err
		}
	}
	start := z.cw.n
	for _, e := range z.entries {
		var extra []byte
		usize, csize, offset := uint32(e.usize), uint32(e.csize), uint32(e.offset)
		if e.usize >= max32 {
			usize = max32
			extra = binary.LittleEndian.AppendUint64(extra, e.usize)
		}
		if e.csize >= max32 {
			csize = max32
			extra = binary.LittleEndian.AppendUint64(extra, e.csize)
		}
		if e.offset >= max32 {
			offset = max32
			extra = binary.LittleEndian.AppendUint64(extra, e.offset)
		}
		b := z.scratch[:0]
		b = binary.LittleEndian.AppendUint32(b, sigCentral)
		b = binary.LittleEndian.AppendUint16(b, zipVersion45) // made by: MS-DOS, 4.5
		b = binary.LittleEndian.AppendUint16(b, zipVersion45) // needed
		b = binary.LittleEndian.AppendUint16(b, flagDescriptor)
		b = binary.LittleEndian.AppendUint16(b, methodDeflate)
		b = binary.LittleEndian.AppendUint16(b, z.dosTime)
		b = binary.LittleEndian.AppendUint16(b, z.dosDate)
		b = binary.LittleEndian.AppendUint32(b, e.crc)
		b = binary.LittleEndian.AppendUint32(b, csize)
		b = binary.LittleEndian.AppendUint32(b, usize)
		b = binary.LittleEndian.AppendUint16(b, uint16(len(e.name)))
		extraLen := 0
		if len(extra) > 0 {
			extraLen = 4 + len(extra)
		}
		b = binary.LittleEndian.AppendUint16(b, uint16(extraLen))
		b = binary.LittleEndian.AppendUint16(b, 0) // comment length
		b = binary.LittleEndian.AppendUint16(b, 0) // disk number start
		b = binary.LittleEndian.AppendUint16(b, 0) // internal attributes
		b = binary.LittleEndian.AppendUint32(b, 0) // external attributes
		b = binary.LittleEndian.AppendUint32(b, offset)
		b = append(b, e.name...)
		if len(extra) > 0 {
			b = binary.LittleEndian.AppendUint16(b, 0x0001) // ZIP64 extended information
			b = binary.LittleEndian.AppendUint16(b, uint16(len(extra)))
			b = append(b, extra...)
		}
		if _, err := z.cw.Write(b); err != nil {
			return z.fail(err)
		}
	}
	end := z.cw.n
	size := end - start
	count := uint64(len(z.entries))
	if count >= max16 || size >= max32 || start >= max32 {
		b := z.scratch[:0]
		b = binary.LittleEndian.AppendUint32(b, sigEnd64)
		b = binary.LittleEndian.AppendUint64(b, 44) // size of the rest of this record
		b = binary.LittleEndian.AppendUint16(b, zipVersion45)
		b = binary.LittleEndian.AppendUint16(b, zipVersion45)
		b = binary.LittleEndian.AppendUint32(b, 0) // this disk
		b = binary.LittleEndian.AppendUint32(b, 0) // disk with the central directory
		b = binary.LittleEndian.AppendUint64(b, count)
		b = binary.LittleEndian.AppendUint64(b, count)
		b = binary.LittleEndian.AppendUint64(b, size)
		b = binary.LittleEndian.AppendUint64(b, start)
		// ZIP64 end of central directory locator
		b = binary.LittleEndian.AppendUint32(b, sigEnd64Loc)
		b = binary.LittleEndian.AppendUint32(b, 0)
		b = binary.LittleEndian.AppendUint64(b, end)
		b = binary.LittleEndian.AppendUint32(b, 1) // total disks
		if _, err := z.cw.Write(b); err != nil {
			return z.fail(err)
		}
		count, size, start = min(count, max16), min(size, max32), min(start, max32)
	}
	b := z.scratch[:0]
	b = binary.LittleEndian.AppendUint32(b, sigEnd)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint16(b, uint16(count))
	b = binary.LittleEndian.AppendUint16(b, uint16(count))
	b = binary.LittleEndian.AppendUint32(b, uint32(size))
	b = binary.LittleEndian.AppendUint32(b, uint32(start))
	b = binary.LittleEndian.AppendUint16(b, 0) // comment length
	if _, err := z.cw.Write(b); err != nil {
		return z.fail(err)
	}
	return z.flush()
}
