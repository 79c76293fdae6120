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
	// maxSpinCount bounds the SpinCount option.
	maxSpinCount = 10_000_000
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

// newOptions applies opts to the defaults and checks the result.
func newOptions(opts []Option) (options, error) {
	o := options{spinCount: DefaultSpinCount}
	for _, opt := range opts {
		opt(&o)
	}
	if o.spinCount < 0 || o.spinCount > maxSpinCount {
		return o, fmt.Errorf("encrypt: spin count %d out of range", o.spinCount)
	}
	return o, nil
}

// Writer encrypts an OOXML package written to it into a compound file. See
// the package documentation for the layout.
type Writer struct {
	f    File
	keys *agile
	seg  segments      // writes to out
	out  *bufio.Writer // ciphertext, after the stream's 8-byte size

	size   int64
	err    error
	closed bool
}

// newKeys checks the password and options and derives the keys.
func newKeys(password string, opts []Option) (*agile, cipher.Block, error) {
	if password == "" {
		return nil, nil, ErrEmptyPassword
	}
	if len(utf16.Encode([]rune(password))) > MaxPasswordLen {
		return nil, nil, ErrPasswordTooLong
	}
	o, err := newOptions(opts)
	if err != nil {
		return nil, nil, err
	}
	keys, err := newAgile(password, o.spinCount)
	if err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(keys.secretKey[:])
	if err != nil {
		return nil, nil, fmt.Errorf("encrypt: %w", err)
	}
	return keys, block, nil
}

// NewWriter returns a Writer that encrypts the package written to it with
// password into a compound file in f. The password is hashed here
// (spinCount iterations of SHA-512, about 50 ms for Excel's 100,000) and not
// kept. Close finishes the file and does not close f.
func NewWriter(f File, password string, opts ...Option) (*Writer, error) {
	keys, block, err := newKeys(password, opts)
	if err != nil {
		return nil, err
	}
	w := &Writer{f: f, keys: keys}
	w.out = bufio.NewWriterSize(io.NewOffsetWriter(f, pkgOffset+8), bufSize)
	w.seg.init(keys, block, w.out)
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
	if w.seg.plain+int64(len(p)) > maxPackage {
		w.err = ErrTooLarge
		return 0, w.err
	}
	n, err := w.seg.Write(p)
	if err != nil {
		w.err = fmt.Errorf("encrypt: write package: %w", err)
	}
	return n, w.err
}

// segments encrypts a package in 4096-byte segments and writes the
// ciphertext to out: one segment of memory, whatever the package's size.
type segments struct {
	block   cipher.Block
	out     io.Writer
	seg     [segmentSize]byte // the current segment's plaintext
	n       int               // bytes in seg
	num     uint32            // segments encrypted so far
	plain   int64             // package bytes written
	ivInput [saltBytes + 4]byte
}

func (s *segments) init(keys *agile, block cipher.Block, out io.Writer) {
	s.block, s.out = block, out
	copy(s.ivInput[:], keys.keySalt[:])
}

// Write encrypts p, writing every segment it fills.
func (s *segments) Write(p []byte) (int, error) {
	written := 0
	for len(p) > 0 {
		c := copy(s.seg[s.n:], p)
		s.n += c
		s.plain += int64(c)
		written += c
		p = p[c:]
		if s.n == segmentSize {
			if err := s.flush(); err != nil {
				return written, err
			}
		}
	}
	return written, nil
}

// last encrypts the current segment, zero-padded to the block size, in
// place, and returns its ciphertext: AES-256-CBC under the secret key, IV =
// SHA-512(keyData salt ‖ uint32le(segment))[:16] (MS-OFFCRYPTO 2.3.4.15).
func (s *segments) last() []byte {
	m := (s.n + aes.BlockSize - 1) / aes.BlockSize * aes.BlockSize
	b := s.seg[:m]
	clear(b[s.n:])
	binary.LittleEndian.PutUint32(s.ivInput[saltBytes:], s.num)
	iv := sha512.Sum512(s.ivInput[:])
	// CBC by hand: cipher.NewCBCEncrypter would allocate a copy of the
	// key schedule per segment.
	prev := iv[:aes.BlockSize]
	for i := 0; i < len(b); i += aes.BlockSize {
		blk := b[i : i+aes.BlockSize]
		subtle.XORBytes(blk, blk, prev)
		s.block.Encrypt(blk, blk)
		prev = blk
	}
	s.num++
	s.n = 0
	return b
}

// flush encrypts the current segment, if it holds anything, and writes it.
func (s *segments) flush() error {
	if s.n == 0 {
		return nil
	}
	_, err := s.out.Write(s.last())
	return err
}

// streamLen is the length of the EncryptedPackage stream of a package of
// size bytes: its 8-byte size, then the package zero-padded to the AES
// block.
func streamLen(size int64) int64 {
	return 8 + (size+aes.BlockSize-1)/aes.BlockSize*aes.BlockSize
}

// pkgEntry is the EncryptedPackage entry of a package of size bytes, and
// the sectors of its stream when the stream is not in the mini stream.
func pkgEntry(size int64) (entry, uint32) {
	e := entry{name: "EncryptedPackage", typ: typeStream, size: uint64(streamLen(size))}
	if size <= maxSmall {
		return e, 0
	}
	return e, sectorsFor(streamLen(size))
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
	plain := w.seg.plain
	var sizeField [8]byte
	binary.LittleEndian.PutUint64(sizeField[:], uint64(plain))
	mac := hmac.New(sha512.New, w.keys.hmacKey[:])
	pkg, pkgSectors := pkgEntry(plain)
	if pkgSectors == 0 {
		// The whole package is in the segment: the stream goes to the
		// mini stream.
		pkg.data = append(sizeField[:], w.seg.last()...)
		mac.Write(pkg.data)
	} else {
		if err := w.seg.flush(); err != nil {
			return fmt.Errorf("encrypt: write package: %w", err)
		}
		n := streamLen(plain)
		// Zero the rest of the last sector.
		var zero [sectorSize]byte
		if _, err := w.out.Write(zero[:int64(pkgSectors)*sectorSize-n]); err != nil {
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
		if _, err := io.CopyBuffer(mac, io.NewSectionReader(w.f, pkgOffset, n), buf); err != nil {
			return fmt.Errorf("encrypt: read package back for its HMAC: %w", err)
		}
	}
	info, err := w.keys.encryptionInfo(mac.Sum(nil))
	if err != nil {
		return err
	}
	size, err := writeCompound(w.f, directory(info, pkg), pkgSectors)
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
