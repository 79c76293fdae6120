package plan

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
	"sync/atomic"

	"github.com/klauspost/compress/flate"
)

// gzipWriter writes a gzip stream (RFC 1952) that holds no compressor
// until compress is called: the bytes before (a CSV's BOM and header) go
// in stored deflate blocks, and each Flush adds an empty one (a keep-
// alive), so that a download waiting for its slot costs a few KiB instead
// of a compressor's MiB. The compressor's blocks then follow in the same
// deflate stream. Write, Flush and Close are called from one goroutine;
// compress may be called from any.
type gzipWriter struct {
	w       io.Writer
	level   int
	want    atomic.Bool // compress was called
	started bool        // the header is written
	fw      *flate.Writer
	crc     uint32
	size    uint32 // modulo 2^32, as the trailer has it
	err     error
}

// Stored deflate blocks (RFC 1951 3.2.4) on a byte boundary: empty and
// not the last (what a sync flush writes), and empty and the last.
var (
	emptyStored     = []byte{0x00, 0x00, 0x00, 0xff, 0xff}
	emptyStoredLast = []byte{0x01, 0x00, 0x00, 0xff, 0xff}
)

func newGzipWriter(w io.Writer, level int) *gzipWriter { return &gzipWriter{w: w, level: level} }

// compress makes the writer deflate from its next Write on.
func (g *gzipWriter) compress() { g.want.Store(true) }

func (g *gzipWriter) write(p []byte) error {
	if g.err == nil {
		_, g.err = g.w.Write(p)
	}
	return g.err
}

// begin writes the header (no name, no time, OS unknown) and, once
// compress has been called, starts the compressor.
func (g *gzipWriter) begin() error {
	if !g.started {
		g.started = true
		if err := g.write([]byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0, 0, 255}); err != nil {
			return err
		}
	}
	if g.fw == nil && g.want.Load() && g.err == nil {
		// After a stored block, or at the start: on a byte boundary.
		g.fw, g.err = flate.NewWriter(g.w, g.level)
	}
	return g.err
}

func (g *gzipWriter) Write(p []byte) (int, error) {
	if err := g.begin(); err != nil {
		return 0, err
	}
	g.crc = crc32.Update(g.crc, crc32.IEEETable, p)
	g.size += uint32(len(p))
	if g.fw != nil {
		n, err := g.fw.Write(p)
		if err != nil {
			g.err = err
		}
		return n, err
	}
	for q := p; len(q) > 0; {
		n := min(len(q), 0xffff)
		if err := g.write([]byte{0, byte(n), byte(n >> 8), ^byte(n), ^byte(n >> 8)}); err != nil {
			return 0, err
		}
		if err := g.write(q[:n]); err != nil {
			return 0, err
		}
		q = q[n:]
	}
	return len(p), nil
}

// Flush writes everything so far, ending with an empty block.
func (g *gzipWriter) Flush() error {
	if err := g.begin(); err != nil {
		return err
	}
	if g.fw != nil {
		if err := g.fw.Flush(); err != nil {
			g.err = err
		}
		return g.err
	}
	return g.write(emptyStored)
}

// Close ends the deflate stream and writes the trailer; it does not close
// the underlying writer.
func (g *gzipWriter) Close() error {
	if err := g.begin(); err != nil {
		return err
	}
	if g.fw != nil {
		if err := g.fw.Close(); err != nil {
			g.err = err
			return err
		}
	} else if err := g.write(emptyStoredLast); err != nil {
		return err
	}
	if err := g.write(binary.LittleEndian.AppendUint32(binary.LittleEndian.AppendUint32(nil, g.crc), g.size)); err != nil {
		return fmt.Errorf("gzip trailer: %w", err)
	}
	return nil
}
