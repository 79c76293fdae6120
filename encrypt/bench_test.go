package encrypt_test

import (
	"io"
	"os"
	"path/filepath"
	"testing"

	"github.com/exportd/exportd/encrypt"
)

// BenchmarkWrite encrypts 64 MiB in the xlsx writer's 64 KiB chunks into a
// file, Close (HMAC read-back, compound file) included.
func BenchmarkWrite(b *testing.B) {
	chunk := randomBytes(64<<10, 1)
	const total = 64 << 20
	path := filepath.Join(b.TempDir(), "bench.xlsx")
	b.SetBytes(total)
	for b.Loop() {
		f, err := os.Create(path)
		if err != nil {
			b.Fatal(err)
		}
		w, err := encrypt.NewWriter(f, "pw", encrypt.SpinCount(1))
		if err != nil {
			b.Fatal(err)
		}
		for range total / len(chunk) {
			if _, err := w.Write(chunk); err != nil {
				b.Fatal(err)
			}
		}
		if err := w.Close(); err != nil {
			b.Fatal(err)
		}
		f.Close()
	}
}

// BenchmarkNewWriter is the password hash: 100,000 SHA-512 iterations.
func BenchmarkNewWriter(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "x"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	for b.Loop() {
		if _, err := encrypt.NewWriter(f, "pw"); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkEncrypt encrypts 64 MiB read in the segment size to io.Discard:
// encryption and the HMAC computed on the way, no file.
func BenchmarkEncrypt(b *testing.B) {
	const total = 64 << 20
	b.SetBytes(total)
	for b.Loop() {
		if _, err := encrypt.Encrypt(io.Discard, io.LimitReader(zeros{}, total), total, "pw", encrypt.SpinCount(1)); err != nil {
			b.Fatal(err)
		}
	}
}
