package encrypt

import (
	"bufio"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha512"
	"crypto/subtle"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"unicode/utf16"
)

// Errors.
var (
	ErrEmptyPassword   = errors.New("encrypt: empty password")
	ErrPasswordTooLong = errors.New("encrypt: password longer than 255 characters")
	// ErrTooLarge: a version 3 compound file holds streams of at most
	// 2 GiB, so the package must stay below that.
	ErrTooLarge = errors.New("encrypt: package larger than 2 GiB")
	ErrClosed   = errors.New("encrypt: write after Close")
)

const (
	segmentSize = 4096
	// maxPackage keeps the EncryptedPackage stream (8-byte size + the
	// package padded to the AES block) within a version 3 stream.
	maxPackage = maxStreamSize - 8 - aes.BlockSize
	// maxSmall is the largest package whose stream (8 + the package
	// rounded up to the block size: 8 + 4080) is shorter than the mini
	// stream cutoff and so lives in the mini stream.
	maxSmall = miniCutoff - aes.BlockSize
	// pkgOffset is where the package stream starts: sector 0, after the
	// 512-byte header.
	pkgOffset = sectorSize
	bufSize   = 64 << 10
)

// File is what a Writer writes the compound file to: an *os.File in
// practice. The compound file starts at offset 0, so the file should be
// empty (a larger *os.File is truncated at Close). ReadAt reads the
// encrypted package back once, at Close, for its HMAC.
type File interface {
	io.ReaderAt
	io.WriterAt
}

// An Option changes a Writer's encryption parameters.
type Option func(*options)

type options struct{ spinCount int }

// SpinCount sets the number of SHA-512 iterations of the password hash
// (default [DefaultSpinCount], Excel's). Fewer make a password cheaper to
// guess; tests use them for speed.
func SpinCount(n int) Option { return func(o *options) { o.spinCount = n } }

// Writer encrypts an OOXML package written to it into a compound file. See
// the package documentation for the layout.
type Writer struct {
	f     File
	keys  *agile
	block cipher.Block
	out   *bufio.Writer // ciphertext, after the stream's 8-byte size

	seg     [segmentSize]byte // the current segment's plaintext
	n       int               // bytes in seg
	segNum  uint32            // segments encrypted so far
	plain   int64             // package bytes written
	ivInput [saltBytes + 4]byte

	size   int64
	err    error
	closed bool
}

// NewWriter returns a Writer that encrypts the package written to it with
// password into a compound file in f. The password is hashed here
// (spinCount iterations of SHA-512, about 50 ms for Excel's 100,000) and not
// kept. Close finishes the file and does not close f.
func NewWriter(f File, password string, opts ...Option) (*Writer, error) {
	o := options{spinCount: DefaultSpinCount}
	for _, opt := range opts {
		opt(&o)
	}
	if password == "" {
		return nil, ErrEmptyPassword
	}
	if len(utf16.Encode([]rune(password))) > MaxPasswordLen {
		return nil, ErrPasswordTooLong
	}
	if o.spinCount < 0 || o.spinCount > 10_000_000 {
		return nil, fmt.Errorf("encrypt: spin count %d out of range", o.spinCount)
	}
	keys, err := newAgile(password, o.spinCount)
	if err != nil {
		return nil, err
	}
	block, err := aes.NewCipher(keys.secretKey[:])
	if err != nil {
		return nil, fmt.Errorf("encrypt: %w", err)
	}
	w := &Writer{f: f, keys: keys, block: block}
	w.out = bufio.NewWriterSize(io.NewOffsetWriter(f, pkgOffset+8), bufSize)
	copy(w.ivInput[:], keys.keySalt[:])
	return w, nil
}

// Write encrypts p. Every full 4096-byte segment is encrypted and written
// to the file's buffer at once.
func (w *Writer) Write(p []byte) (int, error) {
	if w.err != nil {
		return 0, w.err
	}
	if w.closed {
		return 0, ErrClosed
	}
	if w.plain+int64(len(p)) > maxPackage {
		w.err = ErrTooLarge
		return 0, w.err
	}
	written := 0
	for len(p) > 0 {
		c := copy(w.seg[w.n:], p)
		w.n += c
		w.plain += int64(c)
		written += c
		p = p[c:]
		if w.n == segmentSize {
			if err := w.flushSegment(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// cryptSegment encrypts b, the current segment padded to the block size,
// in place: AES-256-CBC under the secret key, IV = SHA-512(keyData salt ‖
// uint32le(segment))[:16] (MS-OFFCRYPTO 2.3.4.15).
func (w *Writer) cryptSegment(b []byte) {
	binary.LittleEndian.PutUint32(w.ivInput[saltBytes:], w.segNum)
	iv := sha512.Sum512(w.ivInput[:])
	// CBC by hand: cipher.NewCBCEncrypter would allocate a copy of the
	// key schedule per segment.
	prev := iv[:aes.BlockSize]
	for i := 0; i < len(b); i += aes.BlockSize {
		blk := b[i : i+aes.BlockSize]
		subtle.XORBytes(blk, blk, prev)
		w.block.Encrypt(blk, blk)
		prev = blk
	}
	w.segNum++
}

// flushSegment encrypts the current segment, zero-padded to the block size,
// and writes it.
func (w *Writer) flushSegment() error {
	m := (w.n + aes.BlockSize - 1) / aes.BlockSize * aes.BlockSize
	clear(w.seg[w.n:m])
	w.cryptSegment(w.seg[:m])
	w.n = 0
	if _, err := w.out.Write(w.seg[:m]); err != nil {
		w.err = fmt.Errorf("encrypt: write package: %w", err)
		return w.err
	}
	return nil
}

// Close encrypts the last segment, computes the HMAC of the package stream
// (reading it back from the file), and writes the EncryptionInfo stream,
// the DataSpaces storage, the directory, the FAT and DIFAT sectors and at
// last the header at offset 0. It does not close the file.
func (w *Writer) Close() error {
	if w.closed {
		return w.err
	}
	w.closed = true
	defer w.keys.wipe()
	if w.err != nil {
		return w.err
	}
	if err := w.finish(); err != nil {
		w.err = err
		return err
	}
	return nil
}

// Size is the size of the compound file, known after a successful Close.
func (w *Writer) Size() int64 { return w.size }

func (w *Writer) finish() error {
	var sizeField [8]byte
	binary.LittleEndian.PutUint64(sizeField[:], uint64(w.plain))
	mac := hmac.New(sha512.New, w.keys.hmacKey[:])
	pkg := entry{name: "EncryptedPackage", typ: typeStream}
	var pkgSectors uint32
	if w.plain <= maxSmall {
		// The whole package is in seg: the stream goes to the mini stream.
		m := (w.n + aes.BlockSize - 1) / aes.BlockSize * aes.BlockSize
		clear(w.seg[w.n:m])
		w.cryptSegment(w.seg[:m])
		pkg.data = append(sizeField[:], w.seg[:m]...)
		pkg.size = uint64(len(pkg.data))
		mac.Write(pkg.data)
	} else {
		if w.n > 0 {
			if err := w.flushSegment(); err != nil {
				return err
			}
		}
		streamLen := 8 + (w.plain+aes.BlockSize-1)/aes.BlockSize*aes.BlockSize
		pkgSectors = sectorsFor(streamLen)
		// Zero the rest of the last sector.
		var zero [sectorSize]byte
		if _, err := w.out.Write(zero[:int64(pkgSectors)*sectorSize-streamLen]); err != nil {
			return fmt.Errorf("encrypt: write package: %w", err)
		}
		if err := w.out.Flush(); err != nil {
			return fmt.Errorf("encrypt: write package: %w", err)
		}
		if _, err := w.f.WriteAt(sizeField[:], pkgOffset); err != nil {
			return fmt.Errorf("encrypt: write package size: %w", err)
		}
		// The HMAC covers the whole stream, the size field first, so it
		// can only be computed now: read the stream back.
		buf := make([]byte, bufSize)
		if _, err := io.CopyBuffer(mac, io.NewSectionReader(w.f, pkgOffset, streamLen), buf); err != nil {
			return fmt.Errorf("encrypt: read package back for its HMAC: %w", err)
		}
		pkg.size = uint64(streamLen)
	}
	info, err := w.keys.encryptionInfo(mac.Sum(nil))
	if err != nil {
		return err
	}
	if len(info) >= miniCutoff {
		return fmt.Errorf("encrypt: EncryptionInfo of %d bytes", len(info)) // cannot happen: ~1.4 KB
	}
	dir := directory(info, pkg)
	size, err := writeCompound(w.f, dir, pkgSectors)
	if err != nil {
		return err
	}
	if t, ok := w.f.(interface{ Truncate(int64) error }); ok {
		if err := t.Truncate(size); err != nil {
			return fmt.Errorf("encrypt: %w", err)
		}
	}
	w.size = size
	return nil
}

// directory returns the entries of the compound file, the root first:
//
//	Root Entry
//	├── EncryptionInfo
//	├── EncryptedPackage
//	└── \x06DataSpaces
//	    ├── Version
//	    ├── DataSpaceMap
//	    ├── DataSpaceInfo
//	    │   └── StrongEncryptionDataSpace
//	    └── TransformInfo
//	        └── StrongEncryptionTransform
//	            └── \x06Primary
func directory(info []byte, pkg entry) []entry {
	stream := func(name string, data []byte) entry {
		return entry{name: name, typ: typeStream, data: data, size: uint64(len(data))}
	}
	return []entry{
		0:  {name: "Root Entry", typ: typeRoot, children: []int{1, 2, 3}},
		1:  stream("EncryptionInfo", info),
		2:  pkg,
		3:  {name: "\x06DataSpaces", typ: typeStorage, children: []int{4, 5, 6, 8}},
		4:  stream("Version", versionStream()),
		5:  stream("DataSpaceMap", dataSpaceMap()),
		6:  {name: "DataSpaceInfo", typ: typeStorage, children: []int{7}},
		7:  stream("StrongEncryptionDataSpace", dataSpaceDefinition()),
		8:  {name: "TransformInfo", typ: typeStorage, children: []int{9}},
		9:  {name: "StrongEncryptionTransform", typ: typeStorage, children: []int{10}},
		10: stream("\x06Primary", primaryTransform()),
	}
}
