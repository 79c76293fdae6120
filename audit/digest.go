package audit

import (
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"io"
)

// Digest is an io.Writer that passes bytes on to another writer and
// computes the SHA-256 and the count of the bytes that writer accepted:
// the exact bytes sent, computed while streaming. Use it as the output of
// an export and put Sum and N in the Record. It is not safe for concurrent
// use (an export writes from one goroutine).
type Digest struct {
	w io.Writer
	h hash.Hash
	n int64
}

// NewDigest returns a Digest writing to w; a nil w only counts and hashes.
func NewDigest(w io.Writer) *Digest { return &Digest{w: w, h: sha256.New()} }

// Write writes p to the underlying writer and hashes what it accepted.
func (d *Digest) Write(p []byte) (int, error) {
	n, err := len(p), error(nil)
	if d.w != nil {
		n, err = d.w.Write(p)
	}
	d.h.Write(p[:n])
	d.n += int64(n)
	return n, err
}

// Sum returns the hex SHA-256 of the bytes written so far.
func (d *Digest) Sum() string { return hex.EncodeToString(d.h.Sum(nil)) }

// N returns the number of bytes written so far.
func (d *Digest) N() int64 { return d.n }

// Unwrap returns the underlying writer.
func (d *Digest) Unwrap() io.Writer { return d.w }
