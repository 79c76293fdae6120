package encrypt

import (
	"bufio"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
)

// Encrypt encrypts the package of size bytes read from src with password
// and writes the compound file to dst, front to back, as it goes: the
// header and the tables at once, then the package's segments as they are
// encrypted, and last the mini stream with \EncryptionInfo (its HMAC is
// computed on the way). It writes exactly [EncryptedSize](size) bytes and
// returns the number written. It reads exactly size bytes from src: a src
// that ends sooner is an error wrapping [io.ErrUnexpectedEOF] (what dst
// received by then is no valid file). Memory does not grow with size: one
// 4096-byte segment and a 64 KiB write buffer.
func Encrypt(dst io.Writer, src io.Reader, size int64, password string, opts ...Option) (n int64, err error) {
	if size < 0 {
		return 0, fmt.Errorf("encrypt: negative package size %d", size)
	}
	if size > maxPackage {
		return 0, ErrTooLarge
	}
	keys, block, err := newKeys(password, opts)
	if err != nil {
		return 0, err
	}
	defer keys.wipe()
	// The HMAC is not known yet, but the stream's length is: the same
	// for every value.
	info, err := keys.encryptionInfo(make([]byte, hashBytes))
	if err != nil {
		return 0, err
	}
	l, err := streamLayout(info, size)
	if err != nil {
		return 0, err
	}
	cw := &countWriter{w: dst}
	k := &sink{w: bufio.NewWriterSize(cw, bufSize)}
	failed := func(err error) (int64, error) {
		return cw.n, fmt.Errorf("encrypt: write: %w", err)
	}
	l.writeHeader(k)
	l.writeFAT(k)
	l.writeDirectory(k)
	l.writeMiniFAT(k)

	var sizeField [8]byte
	binary.LittleEndian.PutUint64(sizeField[:], uint64(size))
	mac := hmac.New(sha512.New, keys.hmacKey[:])
	mac.Write(sizeField[:])
	var s segments
	s.init(keys, block, io.MultiWriter(k.w, mac))
	if l.pkg.count > 0 {
		k.w.Write(sizeField[:])
	}
	for s.plain < size {
		want := int(min(size-s.plain, segmentSize))
		got, err := io.ReadFull(src, s.seg[:want])
		s.n = got
		s.plain += int64(got)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			return cw.n, fmt.Errorf("encrypt: package ended after %d of %d bytes: %w", s.plain, size, io.ErrUnexpectedEOF)
		case err != nil:
			return cw.n, fmt.Errorf("encrypt: read package: %w", err)
		}
		if got == segmentSize {
			if err := s.flush(); err != nil {
				return failed(err)
			}
		}
	}
	pkg := &l.dir[2] // see directory
	if l.pkg.count > 0 {
		if err := s.flush(); err != nil {
			return failed(err)
		}
		k.pad(streamLen(size))
	} else {
		// A package of 4,080 bytes or less: its stream is in the mini
		// stream, written last.
		c := s.last()
		mac.Write(c)
		pkg.data = append(sizeField[:], c...)
	}
	if info, err = keys.encryptionInfo(mac.Sum(nil)); err != nil {
		return cw.n, err
	}
	if uint64(len(info)) != l.dir[1].size {
		return cw.n, fmt.Errorf("encrypt: EncryptionInfo of %d bytes, laid out for %d", len(info), l.dir[1].size) // cannot happen
	}
	l.dir[1].data = info
	if err := l.writeMini(k); err != nil {
		return cw.n, err
	}
	if err := k.w.Flush(); err != nil {
		return failed(err)
	}
	if cw.n != l.size() {
		return cw.n, fmt.Errorf("encrypt: wrote %d bytes, laid out %d", cw.n, l.size()) // cannot happen
	}
	return cw.n, nil
}

// EncryptedSize is the exact size of the file [Encrypt] writes for a
// package of size bytes with the same options (for a Content-Length), or
// -1 for a size or options Encrypt refuses.
func EncryptedSize(size int64, opts ...Option) int64 {
	o, err := newOptions(opts)
	if err != nil || size < 0 || size > maxPackage {
		return -1
	}
	// The EncryptionInfo stream's length depends on the spin count only:
	// every other field has a fixed length.
	a := &agile{spinCount: o.spinCount, encVerifierInput: make([]byte, saltBytes),
		encVerifierValue: make([]byte, hashBytes), encKeyValue: make([]byte, keyBytes)}
	info, err := a.encryptionInfo(make([]byte, hashBytes))
	if err != nil {
		return -1
	}
	l, err := streamLayout(info, size)
	if err != nil {
		return -1
	}
	return l.size()
}

// streamLayout lays out the file Encrypt writes (see the package
// documentation): the header, the FAT and DIFAT sectors, the directory,
// the MiniFAT, the package stream's sectors when it is not in the mini
// stream, and the mini stream last.
func streamLayout(info []byte, size int64) (*layout, error) {
	pkg, pkgSectors := pkgEntry(size)
	l, err := newLayout(directory(info, pkg), pkgSectors)
	if err != nil {
		return nil, err
	}
	l.place(&l.fat, &l.difat, &l.directory, &l.miniFAT, &l.pkg, &l.mini)
	return l, nil
}

// countWriter counts the bytes written to w.
type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
