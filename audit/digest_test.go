package audit_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"testing"

	"github.com/exportd/exportd/audit"
)

type shortWriter struct{ n int }

func (w *shortWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		n := w.n
		w.n = 0
		return n, errors.New("connection closed")
	}
	w.n -= len(p)
	return len(p), nil
}

func TestDigest(t *testing.T) {
	var out bytes.Buffer
	d := audit.NewDigest(&out)
	d.Write([]byte("hello, "))
	d.Write([]byte("세계"))
	sum := sha256.Sum256(out.Bytes())
	if d.Sum() != hex.EncodeToString(sum[:]) || d.N() != int64(out.Len()) {
		t.Fatalf("Sum %s N %d, want %x %d", d.Sum(), d.N(), sum, out.Len())
	}
	// only the bytes the client took count
	d = audit.NewDigest(&shortWriter{n: 5})
	if _, err := d.Write([]byte("0123456789")); err == nil {
		t.Fatal("no error")
	}
	sum = sha256.Sum256([]byte("01234"))
	if d.Sum() != hex.EncodeToString(sum[:]) || d.N() != 5 {
		t.Fatalf("Sum %s N %d after a short write", d.Sum(), d.N())
	}
}

func TestParseKeys(t *testing.T) {
	hexKey := bytes.Repeat([]byte{0xab}, 32)
	b64 := "q6urq6urq6urq6urq6urq6urq6urq6urq6urq6urq6s=" // the same 32 bytes
	for _, text := range []string{
		hex.EncodeToString(hexKey),
		"# comment\n\n" + b64 + "\n",
		"base64:" + b64,
		"hex:" + hex.EncodeToString(hexKey),
	} {
		k, err := audit.ParseKeys([]byte(text))
		if err != nil {
			t.Fatalf("%q: %v", text, err)
		}
		if k.Current() != audit.KeyID(hexKey) {
			t.Errorf("%q: key id %s", text, k.Current())
		}
	}
	k, err := audit.ParseKeys([]byte(hex.EncodeToString(hexKey) + "\n" + hex.EncodeToString(bytes.Repeat([]byte{1}, 16))))
	if err != nil || k.Current() != audit.KeyID(bytes.Repeat([]byte{1}, 16)) {
		t.Fatalf("the last key is not current: %v %v", k.Current(), err)
	}
	for _, bad := range []string{"", "# none\n", "abcd", "not a key!"} {
		if _, err := audit.ParseKeys([]byte(bad)); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
