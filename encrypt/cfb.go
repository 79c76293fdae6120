package encrypt

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"unicode"
	"unicode/utf16"
)

// MS-CFB version 3 constants.
const (
	sectorSize     = 512
	miniSectorSize = 64
	miniCutoff     = 4096 // streams shorter than this live in the mini stream
	entrySize      = 128
	headerDIFAT    = 109 // FAT sector numbers in the header
	perSector      = sectorSize / 4
	maxStreamSize  = 0x80000000 // a version 3 stream is at most 2 GiB

	difSect    = 0xFFFFFFFC
	fatSect    = 0xFFFFFFFD
	endOfChain = 0xFFFFFFFE
	freeSect   = 0xFFFFFFFF
	noStream   = 0xFFFFFFFF

	typeStorage = 1
	typeStream  = 2
	typeRoot    = 5
	red         = 0
	black       = 1
)

// entry is a directory entry of the compound file.
type entry struct {
	name     string
	typ      byte
	data     []byte // a stream's content when it lives in the mini stream
	start    uint32
	size     uint64
	children []int // indices into the directory

	left, right, child uint32
	color              byte
}

// lessName orders sibling names as MS-CFB 2.6.4 asks: shorter first, then
// code unit by code unit in upper case.
func lessName(a, b string) int {
	ua, ub := utf16.Encode([]rune(a)), utf16.Encode([]rune(b))
	if len(ua) != len(ub) {
		return len(ua) - len(ub)
	}
	for i := range ua {
		ca, cb := unicode.ToUpper(rune(ua[i])), unicode.ToUpper(rune(ub[i]))
		if ca != cb {
			return int(ca) - int(cb)
		}
	}
	return 0
}

// tree links each storage's children into a red-black tree: a balanced
// binary search tree whose deepest level, when not full, is red.
func tree(dir []entry) {
	for i := range dir {
		dir[i].left, dir[i].right, dir[i].child = noStream, noStream, noStream
		dir[i].color = black
	}
	for i := range dir {
		kids := slices.Clone(dir[i].children)
		if len(kids) == 0 {
			continue
		}
		slices.SortFunc(kids, func(a, b int) int { return lessName(dir[a].name, dir[b].name) })
		maxDepth := 0
		for n := len(kids); n > 1; n /= 2 {
			maxDepth++
		}
		full := len(kids)&(len(kids)+1) == 0 // 2^k - 1 nodes
		var build func(s []int, depth int) uint32
		build = func(s []int, depth int) uint32 {
			if len(s) == 0 {
				return noStream
			}
			m := len(s) / 2
			e := &dir[s[m]]
			e.left = build(s[:m], depth+1)
			e.right = build(s[m+1:], depth+1)
			if !full && depth == maxDepth {
				e.color = red
			}
			return uint32(s[m])
		}
		dir[i].child = build(kids, 0)
	}
}

// appendEntry appends the 128-byte directory entry e.
func appendEntry(b []byte, e *entry) []byte {
	var rec [entrySize]byte
	name := utf16.Encode([]rune(e.name))
	for i, c := range name {
		binary.LittleEndian.PutUint16(rec[2*i:], c)
	}
	binary.LittleEndian.PutUint16(rec[64:], uint16(2*len(name)+2))
	rec[66] = e.typ
	rec[67] = e.color
	binary.LittleEndian.PutUint32(rec[68:], e.left)
	binary.LittleEndian.PutUint32(rec[72:], e.right)
	binary.LittleEndian.PutUint32(rec[76:], e.child)
	// CLSID, state bits and both times stay zero.
	binary.LittleEndian.PutUint32(rec[116:], e.start)
	binary.LittleEndian.PutUint64(rec[120:], e.size)
	return append(b, rec[:]...)
}

// freeEntry is an unused directory slot.
func appendFreeEntry(b []byte) []byte {
	var rec [entrySize]byte
	binary.LittleEndian.PutUint32(rec[68:], noStream)
	binary.LittleEndian.PutUint32(rec[72:], noStream)
	binary.LittleEndian.PutUint32(rec[76:], noStream)
	return append(b, rec[:]...)
}

func sectorsFor(n int64) uint32 { return uint32((n + sectorSize - 1) / sectorSize) }

// region is a run of contiguous sectors: every chain of the file is one.
type region struct{ start, count uint32 }

func (r region) contains(s uint32) bool { return s >= r.start && s < r.start+r.count }

// layout is the sector map of a compound file whose every stream size is
// known: the package stream (the one stream of the mini stream cutoff or
// more), the mini stream, the MiniFAT, the directory, the FAT and the DIFAT,
// each a region. newLayout counts the sectors of each; place puts them in
// the file in an order of the caller's. The Writer places the package
// first (its size is known only at Close); Encrypt places it after the
// tables, so that the file can be written front to back.
type layout struct {
	dir                                       []entry
	miniSectors                               uint32 // 64-byte mini sectors
	pkg, mini, miniFAT, directory, fat, difat region
	total                                     uint32 // sectors after the header
}

// newLayout counts the sectors of a compound file of the entries dir, the
// large stream's (if any) pkgSectors long, and gives each small stream its
// place in the mini stream (from its size: its data may come later).
func newLayout(dir []entry, pkgSectors uint32) (*layout, error) {
	l := &layout{dir: dir}
	large := uint32(0)
	for i := range dir {
		e := &dir[i]
		if e.typ != typeStream {
			continue
		}
		if e.size >= miniCutoff {
			large += sectorsFor(int64(e.size))
			continue
		}
		e.start = l.miniSectors
		l.miniSectors += uint32((e.size + miniSectorSize - 1) / miniSectorSize)
	}
	if large != pkgSectors { // one large stream, the package: cannot happen
		return nil, fmt.Errorf("encrypt: %d sectors of large streams, %d laid out", large, pkgSectors)
	}
	dir[0].size = uint64(l.miniSectors) * miniSectorSize
	l.pkg.count = pkgSectors
	l.mini.count = sectorsFor(int64(dir[0].size))
	l.miniFAT.count = (l.miniSectors + perSector - 1) / perSector
	l.directory.count = sectorsFor(int64(len(dir)) * entrySize)
	others := l.pkg.count + l.mini.count + l.miniFAT.count + l.directory.count
	for l.fat.count = 1; ; l.fat.count++ {
		l.difat.count = 0
		if l.fat.count > headerDIFAT {
			l.difat.count = (l.fat.count - headerDIFAT + perSector - 2) / (perSector - 1)
		}
		if (others+l.fat.count+l.difat.count+perSector-1)/perSector <= l.fat.count {
			break
		}
	}
	l.total = others + l.fat.count + l.difat.count
	if l.total > 0xFFFFFFFA {
		return nil, fmt.Errorf("encrypt: %d sectors do not fit a compound file", l.total)
	}
	tree(dir)
	return l, nil
}

// place lays the regions out one after the other, in order (each of the
// six once), and points the directory at them.
func (l *layout) place(order ...*region) {
	var s uint32
	for _, r := range order {
		r.start = s
		s += r.count
	}
	l.dir[0].start = endOfChain
	if l.miniSectors > 0 {
		l.dir[0].start = l.mini.start
	}
	for i := range l.dir {
		if e := &l.dir[i]; e.typ == typeStream && e.size >= miniCutoff {
			e.start = l.pkg.start
		}
	}
}

// size is the file's size in bytes.
func (l *layout) size() int64 { return sectorSize * (1 + int64(l.total)) }

// fatEntry is the FAT entry of sector s.
func (l *layout) fatEntry(s uint32) uint32 {
	for _, c := range [...]region{l.pkg, l.mini, l.miniFAT, l.directory} {
		if c.contains(s) {
			if s+1 < c.start+c.count {
				return s + 1
			}
			return endOfChain
		}
	}
	switch {
	case l.fat.contains(s):
		return fatSect
	case l.difat.contains(s):
		return difSect
	}
	return freeSect
}

// sink writes a compound file's parts to a bufio.Writer: write errors
// surface at its Flush, so the parts do not check them.
type sink struct {
	w   *bufio.Writer
	u32 [4]byte
}

func (k *sink) put(v uint32) {
	binary.LittleEndian.PutUint32(k.u32[:], v)
	k.w.Write(k.u32[:])
}

// pad writes zeros from n bytes written to the end of their last sector.
func (k *sink) pad(n int64) {
	for ; n%sectorSize != 0; n++ {
		k.w.WriteByte(0)
	}
}

// writeHeader writes the 512-byte header.
func (l *layout) writeHeader(k *sink) {
	h := make([]byte, 0, sectorSize)
	h = append(h, 0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1)
	h = append(h, make([]byte, 16)...) // CLSID
	h = binary.LittleEndian.AppendUint16(h, 0x003E)
	h = binary.LittleEndian.AppendUint16(h, 3)      // major version 3
	h = binary.LittleEndian.AppendUint16(h, 0xFFFE) // little-endian
	h = binary.LittleEndian.AppendUint16(h, 9)      // 512-byte sectors
	h = binary.LittleEndian.AppendUint16(h, 6)      // 64-byte mini sectors
	h = append(h, make([]byte, 6)...)
	h = binary.LittleEndian.AppendUint32(h, 0) // directory sectors: 0 in version 3
	h = binary.LittleEndian.AppendUint32(h, l.fat.count)
	h = binary.LittleEndian.AppendUint32(h, l.directory.start)
	h = binary.LittleEndian.AppendUint32(h, 0) // transaction signature
	h = binary.LittleEndian.AppendUint32(h, miniCutoff)
	if l.miniFAT.count > 0 {
		h = binary.LittleEndian.AppendUint32(h, l.miniFAT.start)
	} else {
		h = binary.LittleEndian.AppendUint32(h, endOfChain)
	}
	h = binary.LittleEndian.AppendUint32(h, l.miniFAT.count)
	if l.difat.count > 0 {
		h = binary.LittleEndian.AppendUint32(h, l.difat.start)
	} else {
		h = binary.LittleEndian.AppendUint32(h, endOfChain)
	}
	h = binary.LittleEndian.AppendUint32(h, l.difat.count)
	for i := range uint32(headerDIFAT) {
		if i < l.fat.count {
			h = binary.LittleEndian.AppendUint32(h, l.fat.start+i)
		} else {
			h = binary.LittleEndian.AppendUint32(h, freeSect)
		}
	}
	k.w.Write(h)
}

// writeFAT writes the FAT sectors, computed sector by sector, then the
// DIFAT sectors (placed right after them).
func (l *layout) writeFAT(k *sink) {
	for s := range l.fat.count * perSector {
		k.put(l.fatEntry(s))
	}
	for i := range l.difat.count {
		for j := range uint32(perSector - 1) {
			if n := headerDIFAT + i*(perSector-1) + j; n < l.fat.count {
				k.put(l.fat.start + n)
			} else {
				k.put(freeSect)
			}
		}
		if i+1 < l.difat.count {
			k.put(l.difat.start + i + 1)
		} else {
			k.put(endOfChain)
		}
	}
}

// writeDirectory writes the directory sectors.
func (l *layout) writeDirectory(k *sink) {
	var d []byte
	for i := range l.dir {
		d = appendEntry(d, &l.dir[i])
	}
	for len(d)%sectorSize != 0 {
		d = appendFreeEntry(d)
	}
	k.w.Write(d)
}

// writeMiniFAT writes the MiniFAT sectors.
func (l *layout) writeMiniFAT(k *sink) {
	for i := range l.miniFAT.count * perSector {
		if i < l.miniSectors {
			k.put(miniChain(l.dir, i))
		} else {
			k.put(freeSect)
		}
	}
}

// writeMini writes the mini stream's sectors: every stream shorter than
// the cutoff, each from a mini sector boundary, as newLayout placed them.
func (l *layout) writeMini(k *sink) error {
	var n int64
	for i := range l.dir {
		e := &l.dir[i]
		if e.typ != typeStream || e.size >= miniCutoff {
			continue
		}
		if uint64(len(e.data)) != e.size || n != int64(e.start)*miniSectorSize {
			return fmt.Errorf("encrypt: %s of %d bytes, laid out for %d", e.name, len(e.data), e.size) // cannot happen
		}
		k.w.Write(e.data)
		n += int64(len(e.data))
		for ; n%miniSectorSize != 0; n++ {
			k.w.WriteByte(0)
		}
	}
	k.pad(n)
	return nil
}

// writeCompound writes the compound file around a package stream already in
// f: pkgSectors sectors from sector 0 (file offset 512) hold the stream of
// dir's large entry. It appends the mini stream, MiniFAT, directory, FAT and
// DIFAT sectors after them and writes the header last, at offset 0. It
// returns the file's size.
func writeCompound(f io.WriterAt, dir []entry, pkgSectors uint32) (int64, error) {
	l, err := newLayout(dir, pkgSectors)
	if err != nil {
		return 0, err
	}
	l.place(&l.pkg, &l.mini, &l.miniFAT, &l.directory, &l.fat, &l.difat)
	k := &sink{w: bufio.NewWriterSize(io.NewOffsetWriter(f, sectorSize*(1+int64(pkgSectors))), bufSize)}
	if err := l.writeMini(k); err != nil {
		return 0, err
	}
	l.writeMiniFAT(k)
	l.writeDirectory(k)
	l.writeFAT(k)
	if err := k.w.Flush(); err != nil {
		return 0, fmt.Errorf("encrypt: write compound file: %w", err)
	}
	k = &sink{w: bufio.NewWriterSize(io.NewOffsetWriter(f, 0), sectorSize)}
	l.writeHeader(k)
	if err := k.w.Flush(); err != nil {
		return 0, fmt.Errorf("encrypt: write compound file header: %w", err)
	}
	return l.size(), nil
}

// miniChain is the MiniFAT entry of mini sector s: the next mini sector of
// the stream holding s, or the end of its chain.
func miniChain(dir []entry, s uint32) uint32 {
	for i := range dir {
		e := &dir[i]
		if e.typ != typeStream || e.size >= miniCutoff {
			continue
		}
		n := uint32((e.size + miniSectorSize - 1) / miniSectorSize)
		if s >= e.start && s < e.start+n {
			if s+1 < e.start+n {
				return s + 1
			}
			return endOfChain
		}
	}
	return freeSect
}
