package encrypt_test

import (
	"bytes"
	"math/rand/v2"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/exportd/exportd/encrypt"
)

func randomBytes(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 1))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// TestRoundTripGo encrypts packages of sizes around every boundary (block,
// mini stream cutoff, segment, sector) and decrypts them with the test's own
// derivation, through an independent compound file reader.
func TestRoundTripGo(t *testing.T) {
	sizes := []int{0, 1, 15, 16, 17, 4071, 4072, 4080, 4081, 4088, 4095, 4096, 4097, 8191, 8192, 8193, 100_000, 1 << 20}
	for _, n := range sizes {
		data := randomBytes(n, uint64(n))
		path := encryptFile(t, data, "pässwörd 🔑", 1, 4095, 7, 70000)
		got, names := streams(t, path)
		want := []string{
			"EncryptionInfo", "EncryptedPackage", "\x06DataSpaces",
			"\x06DataSpaces/Version", "\x06DataSpaces/DataSpaceMap", "\x06DataSpaces/DataSpaceInfo",
			"\x06DataSpaces/DataSpaceInfo/StrongEncryptionDataSpace", "\x06DataSpaces/TransformInfo",
			"\x06DataSpaces/TransformInfo/StrongEncryptionTransform",
			"\x06DataSpaces/TransformInfo/StrongEncryptionTransform/\x06Primary",
		}
		slices.Sort(names)
		slices.Sort(want)
		if !slices.Equal(names, want) {
			t.Fatalf("size %d: entries %q, want %q", n, names, want)
		}
		pkg := got["EncryptedPackage"]
		if want := 8 + (n+15)/16*16; len(pkg) != want {
			t.Errorf("size %d: EncryptedPackage is %d bytes, want %d", n, len(pkg), want)
		}
		plain, ok := decryptGo(t, got["EncryptionInfo"], pkg, "pässwörd 🔑")
		if !ok {
			t.Fatalf("size %d: the password verifier refuses the password", n)
		}
		if !bytes.Equal(plain, data) {
			t.Fatalf("size %d: decrypted package differs", n)
		}
		if _, ok := decryptGo(t, got["EncryptionInfo"], pkg, "pässwörd 🔐"); ok {
			t.Fatalf("size %d: the verifier accepts a wrong password", n)
		}
		checkCompound(t, path)
	}
}

// TestDataSpaces checks the constant streams byte for byte against
// MS-OFFCRYPTO's layouts, spelled out here by hand.
func TestDataSpaces(t *testing.T) {
	got, _ := streams(t, encryptFile(t, []byte("x"), "pw"))
	u := func(s string) []byte { // UNICODE-LP-P4 of ASCII s
		b := []byte{byte(2 * len(s)), 0, 0, 0}
		for _, c := range s {
			b = append(b, byte(c), 0)
		}
		for len(b)%4 != 0 {
			b = append(b, 0)
		}
		return b
	}
	v1 := []byte{1, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0}
	cat := func(p ...[]byte) []byte { return bytes.Join(p, nil) }
	want := map[string][]byte{
		"\x06DataSpaces/Version": cat(u("Microsoft.Container.DataSpaces"), v1),
		"\x06DataSpaces/DataSpaceMap": cat([]byte{8, 0, 0, 0, 1, 0, 0, 0, 104, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0},
			u("EncryptedPackage"), u("StrongEncryptionDataSpace")),
		"\x06DataSpaces/DataSpaceInfo/StrongEncryptionDataSpace": cat([]byte{8, 0, 0, 0, 1, 0, 0, 0}, u("StrongEncryptionTransform")),
		"\x06DataSpaces/TransformInfo/StrongEncryptionTransform/\x06Primary": cat([]byte{88, 0, 0, 0, 1, 0, 0, 0},
			u("{FF9A3F03-56EF-4613-BDD5-5A41C1D07246}"), u("Microsoft.Container.EncryptionTransform"), v1,
			[]byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 4, 0, 0, 0}),
	}
	for name, w := range want {
		if !bytes.Equal(got[name], w) {
			t.Errorf("%q:\n got % x\nwant % x", name, got[name], w)
		}
	}
}

func TestErrors(t *testing.T) {
	f, err := os.Create(t.TempDir() + "/x")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := encrypt.NewWriter(f, ""); err == nil {
		t.Error("empty password accepted")
	}
	if _, err := encrypt.NewWriter(f, string(bytes.Repeat([]byte("a"), 256))); err == nil {
		t.Error("256-character password accepted")
	}
	w, err := encrypt.NewWriter(f, string(bytes.Repeat([]byte("é"), 255)))
	if err != nil {
		t.Fatalf("255-character password: %v", err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write([]byte("x")); err == nil {
		t.Error("Write after Close accepted")
	}
}

func TestGeneratePassword(t *testing.T) {
	seen := map[string]bool{}
	counts := map[rune]int{}
	for range 2000 {
		p := encrypt.GeneratePassword()
		if len(p) != 19 || seen[p] {
			t.Fatalf("password %q (repeated: %v)", p, seen[p])
		}
		seen[p] = true
		for i, c := range p {
			if i%5 == 4 {
				if c != '-' {
					t.Fatalf("password %q", p)
				}
				continue
			}
			if !strings.ContainsRune("23456789abcdefghjkmnpqrstuvwxyz", c) {
				t.Fatalf("password %q has %q", p, c)
			}
			counts[c]++
		}
	}
	// 32,000 letters over 31: about 1,032 each; a biased modulo would
	// not show at this size, so only check that every letter occurs.
	if len(counts) != 31 {
		t.Fatalf("%d distinct letters", len(counts))
	}
}
