package encrypt_test

import (
	"encoding/binary"
	"os"
	"strings"
	"testing"
	"unicode/utf16"
)

const (
	endOfChain = 0xFFFFFFFE
	fatSect    = 0xFFFFFFFD
	difSect    = 0xFFFFFFFC
	noStream   = 0xFFFFFFFF
)

type dirEntry struct {
	name               string
	typ, color         byte
	left, right, child uint32
	start              uint32
	size               uint64
}

// checkCompound checks a compound file against MS-CFB version 3 with its own
// small reader: header fields, the DIFAT chain, every chain in the FAT and
// MiniFAT, that every sector is used exactly once, and that each storage's
// children form a red-black tree ordered as 2.6.4 says. It returns the
// number of DIFAT sectors.
func checkCompound(t testing.TB, path string) (difatSectors int) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	le32 := func(off int) uint32 { return binary.LittleEndian.Uint32(b[off:]) }
	le16 := func(off int) uint16 { return binary.LittleEndian.Uint16(b[off:]) }
	if string(b[:8]) != "\xD0\xCF\x11\xE0\xA1\xB1\x1A\xE1" || le16(26) != 3 || le16(28) != 0xFFFE ||
		le16(30) != 9 || le16(32) != 6 || le32(40) != 0 || le32(56) != 4096 {
		t.Fatalf("header % x", b[:64])
	}
	if len(b)%512 != 0 {
		t.Fatalf("file size %d is not a whole number of sectors", len(b))
	}
	nSect := uint32(len(b)/512 - 1)
	sector := func(s uint32) []byte {
		if s >= nSect {
			t.Fatalf("sector %d beyond the file's %d", s, nSect)
		}
		return b[512*(1+int(s)) : 512*(2+int(s))]
	}
	used := make([]string, nSect)
	use := func(s uint32, what string) {
		if s >= nSect {
			t.Fatalf("%s: sector %d beyond the file's %d", what, s, nSect)
		}
		if used[s] != "" {
			t.Fatalf("sector %d used by %s and %s", s, used[s], what)
		}
		used[s] = what
	}

	numFAT, firstDir, firstMiniFAT, numMiniFAT, firstDIFAT, numDIFAT :=
		le32(44), le32(48), le32(60), le32(64), le32(68), le32(72)
	var fatSectors []uint32
	for i := range uint32(109) {
		v := le32(76 + 4*int(i))
		if i < numFAT {
			fatSectors = append(fatSectors, v)
		} else if v != noStream {
			t.Fatalf("header DIFAT[%d] = %#x beyond %d FAT sectors", i, v, numFAT)
		}
	}
	var difats []uint32
	for s, i := firstDIFAT, uint32(0); i < numDIFAT; i++ {
		use(s, "DIFAT")
		difats = append(difats, s)
		d := sector(s)
		for j := range 127 {
			v := binary.LittleEndian.Uint32(d[4*j:])
			if uint32(len(fatSectors)) < numFAT {
				fatSectors = append(fatSectors, v)
			} else if v != noStream {
				t.Fatalf("DIFAT sector %d entry %d = %#x beyond %d FAT sectors", s, j, v, numFAT)
			}
		}
		s = binary.LittleEndian.Uint32(d[508:])
		if i+1 == numDIFAT && s != endOfChain {
			t.Fatalf("last DIFAT sector links to %#x", s)
		}
	}
	if numDIFAT == 0 && firstDIFAT != endOfChain {
		t.Fatalf("no DIFAT sectors, first DIFAT sector %#x", firstDIFAT)
	}
	if uint32(len(fatSectors)) != numFAT {
		t.Fatalf("%d FAT sectors listed, header says %d", len(fatSectors), numFAT)
	}
	var fat []uint32
	for _, s := range fatSectors {
		use(s, "FAT")
		d := sector(s)
		for j := range 128 {
			fat = append(fat, binary.LittleEndian.Uint32(d[4*j:]))
		}
	}
	if uint32(len(fat)) < nSect {
		t.Fatalf("FAT covers %d sectors of %d", len(fat), nSect)
	}
	for _, s := range fatSectors {
		if fat[s] != fatSect {
			t.Fatalf("FAT sector %d marked %#x", s, fat[s])
		}
	}
	for _, s := range difats {
		if fat[s] != difSect {
			t.Fatalf("DIFAT sector %d marked %#x", s, fat[s])
		}
	}
	for s := nSect; s < uint32(len(fat)); s++ {
		if fat[s] != noStream {
			t.Fatalf("FAT entry %d beyond the file is %#x", s, fat[s])
		}
	}
	chain := func(start uint32, what string) []uint32 {
		var c []uint32
		for s := start; s != endOfChain; s = fat[s] {
			use(s, what)
			c = append(c, s)
		}
		return c
	}
	read := func(c []uint32) []byte {
		var out []byte
		for _, s := range c {
			out = append(out, sector(s)...)
		}
		return out
	}

	dirBytes := read(chain(firstDir, "directory"))
	var dir []dirEntry
	for off := 0; off+128 <= len(dirBytes); off += 128 {
		e := dirBytes[off : off+128]
		n := int(binary.LittleEndian.Uint16(e[64:]))
		var u []uint16
		for i := 0; i+2 < n; i += 2 {
			u = append(u, binary.LittleEndian.Uint16(e[i:]))
		}
		dir = append(dir, dirEntry{
			name: string(utf16.Decode(u)), typ: e[66], color: e[67],
			left: binary.LittleEndian.Uint32(e[68:]), right: binary.LittleEndian.Uint32(e[72:]),
			child: binary.LittleEndian.Uint32(e[76:]), start: binary.LittleEndian.Uint32(e[116:]),
			size: binary.LittleEndian.Uint64(e[120:]),
		})
	}
	if dir[0].typ != 5 || dir[0].name != "Root Entry" {
		t.Fatalf("first entry %+v", dir[0])
	}
	miniFAT := read(chain(firstMiniFAT, "MiniFAT"))
	if uint32(len(miniFAT)/512) != numMiniFAT {
		t.Fatalf("MiniFAT chain of %d sectors, header says %d", len(miniFAT)/512, numMiniFAT)
	}
	miniStream := read(chain(dir[0].start, "mini stream"))
	if uint64(len(miniStream)) < dir[0].size || dir[0].size%64 != 0 {
		t.Fatalf("mini stream of %d bytes in %d", dir[0].size, len(miniStream))
	}
	miniUsed := make([]bool, dir[0].size/64)
	for i, e := range dir {
		switch {
		case e.typ == 2 && e.size >= 4096:
			if n := len(chain(e.start, e.name)); uint64(n) != (e.size+511)/512 {
				t.Fatalf("%q: %d bytes in %d sectors", e.name, e.size, n)
			}
		case e.typ == 2:
			n := uint64(0)
			for s := e.start; s != endOfChain; s = binary.LittleEndian.Uint32(miniFAT[4*s:]) {
				if miniUsed[s] {
					t.Fatalf("mini sector %d used twice", s)
				}
				miniUsed[s] = true
				n++
			}
			if n != (e.size+63)/64 {
				t.Fatalf("%q: %d bytes in %d mini sectors", e.name, e.size, n)
			}
		case e.typ == 0 && i > 0 && (e.left != noStream || e.right != noStream || e.child != noStream):
			t.Fatalf("free entry %d links elsewhere", i)
		}
		if e.typ == 1 || e.typ == 5 {
			checkTree(t, dir, e.child)
		}
	}
	for s, u := range used {
		if u == "" {
			t.Fatalf("sector %d of %d is used by nothing", s, nSect)
		}
	}
	return int(numDIFAT)
}

// checkTree checks that the siblings under root are in the order of MS-CFB
// 2.6.4 (shorter names first, then upper-cased code units) and form a
// red-black tree: black root, no red node with a red child, the same number
// of black nodes on every path.
func checkTree(t testing.TB, dir []dirEntry, root uint32) {
	t.Helper()
	less := func(a, b string) bool {
		if len(a) != len(b) { // ASCII names here
			return len(a) < len(b)
		}
		return strings.ToUpper(a) < strings.ToUpper(b)
	}
	if root != noStream && dir[root].color != 1 {
		t.Fatalf("tree root %q is red", dir[root].name)
	}
	var walk func(n uint32, lo, hi string, parentRed bool) int
	walk = func(n uint32, lo, hi string, parentRed bool) int {
		if n == noStream {
			return 1
		}
		e := dir[n]
		if (lo != "" && !less(lo, e.name)) || (hi != "" && !less(e.name, hi)) {
			t.Fatalf("%q is out of order between %q and %q", e.name, lo, hi)
		}
		red := e.color == 0
		if red && parentRed {
			t.Fatalf("red %q under a red parent", e.name)
		}
		l := walk(e.left, lo, e.name, red)
		r := walk(e.right, e.name, hi, red)
		if l != r {
			t.Fatalf("black heights %d and %d under %q", l, r, e.name)
		}
		if !red {
			l++
		}
		return l
	}
	walk(root, "", "", false)
}
