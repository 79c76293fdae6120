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

// writeCompound writes the compound file around a package stream already in
// f: pkgSectors sectors from sector 0 (file offset 512) hold the stream of
// dir's large entry. It appends the mini stream, MiniFAT, directory, FAT and
// DIFAT sectors after them and writes the header last, at offset 0. It
// returns the file's size.
func writeCompound(f io.WriterAt, dir []entry, pkgSectors uint32) (int64, error) {
	// The mini stream: every stream shorter than the cutoff, each from a
	// mini sector boundary.
	var mini []byte
	for i := range dir {
		e := &dir[i]
		if e.typ != typeStream || e.size >= miniCutoff {
			continue
		}
		e.start = uint32(len(mini) / miniSectorSize)
		mini = append(mini, e.data...)
		for len(mini)%miniSectorSize != 0 {
			mini = append(mini, 0)
		}
	}
	miniSectors := uint32(len(mini) / miniSectorSize)
	dir[0].size = uint64(len(mini))

	// Sector map: package, mini stream, MiniFAT, directory, FAT, DIFAT.
	miniStart := pkgSectors
	miniCount := sectorsFor(int64(len(mini)))
	miniFATStart := miniStart + miniCount
	miniFATCount := (miniSectors + perSector - 1) / perSector
	dirStart := miniFATStart + miniFATCount
	dirCount := sectorsFor(int64(len(dir)) * entrySize)
	fatStart := dirStart + dirCount
	var fatCount, difatCount uint32
	for fatCount = 1; ; fatCount++ {
		difatCount = 0
		if fatCount > headerDIFAT {
			difatCount = (fatCount - headerDIFAT + perSector - 2) / (perSector - 1)
		}
		if (fatStart+fatCount+difatCount+perSector-1)/perSector <= fatCount {
			break
		}
	}
	difatStart := fatStart + fatCount
	total := difatStart + difatCount
	if total > 0xFFFFFFFA {
		return 0, fmt.Errorf("encrypt: %d sectors do not fit a compound file", total)
	}
	if miniSectors > 0 {
		dir[0].start = miniStart
	} else {
		dir[0].start = endOfChain
	}

	tree(dir)
	chains := [][2]uint32{
		{0, pkgSectors},
		{miniStart, miniCount},
		{miniFATStart, miniFATCount},
		{dirStart, dirCount},
	}
	fat := func(s uint32) uint32 {
		for _, c := range chains {
			if s >= c[0] && s < c[0]+c[1] {
				if s+1 < c[0]+c[1] {
					return s + 1
				}
				return endOfChain
			}
		}
		switch {
		case s >= fatStart && s < difatStart:
			return fatSect
		case s >= difatStart && s < total:
			return difSect
		}
		return freeSect
	}

	w := bufio.NewWriterSize(io.NewOffsetWriter(f, sectorSize*(1+int64(pkgSectors))), 64<<10)
	var u32 [4]byte
	put := func(v uint32) {
		binary.LittleEndian.PutUint32(u32[:], v)
		w.Write(u32[:])
	}
	pad := func(n int) {
		for ; n%sectorSize != 0; n++ {
			w.WriteByte(0)
		}
	}
	w.Write(mini)
	pad(len(mini))
	for i := range miniFATCount * perSector {
		switch {
		case i >= miniSectors:
			put(freeSect)
		default:
			put(miniChain(dir, i))
		}
	}
	var d []byte
	for i := range dir {
		d = appendEntry(d, &dir[i])
	}
	for len(d)%sectorSize != 0 {
		d = appendFreeEntry(d)
	}
	w.Write(d)
	for s := range fatCount * perSector {
		put(fat(s))
	}
	for i := range difatCount {
		for j := range uint32(perSector - 1) {
			k := headerDIFAT + i*(perSector-1) + j
			if k < fatCount {
				put(fatStart + k)
			} else {
				put(freeSect)
			}
		}
		if i+1 < difatCount {
			put(difatStart + i + 1)
		} else {
			put(endOfChain)
		}
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("encrypt: write compound file: %w", err)
	}

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
	h = binary.LittleEndian.AppendUint32(h, fatCount)
	h = binary.LittleEndian.AppendUint32(h, dirStart)
	h = binary.LittleEndian.AppendUint32(h, 0) // transaction signature
	h = binary.LittleEndian.AppendUint32(h, miniCutoff)
	if miniFATCount > 0 {
		h = binary.LittleEndian.AppendUint32(h, miniFATStart)
	} else {
		h = binary.LittleEndian.AppendUint32(h, endOfChain)
	}
	h = binary.LittleEndian.AppendUint32(h, miniFATCount)
	if difatCount > 0 {
		h = binary.LittleEndian.AppendUint32(h, difatStart)
	} else {
		h = binary.LittleEndian.AppendUint32(h, endOfChain)
	}
	h = binary.LittleEndian.AppendUint32(h, difatCount)
	for i := range uint32(headerDIFAT) {
		if i < fatCount {
			h = binary.LittleEndian.AppendUint32(h, fatStart+i)
		} else {
			h = binary.LittleEndian.AppendUint32(h, freeSect)
		}
	}
	if _, err := f.WriteAt(h, 0); err != nil {
		return 0, fmt.Errorf("encrypt: write compound file header: %w", err)
	}
	return sectorSize * (1 + int64(total)), nil
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
