package encrypt_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/exportd/exportd/encrypt"
)

// encryptStream encrypts the size bytes of src with encrypt.Encrypt into a
// new file, checks that it wrote EncryptedSize(size) bytes, and returns the
// file's path.
func encryptStream(t testing.TB, src io.Reader, size int64, password string) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "stream.xlsx")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n, err := encrypt.Encrypt(f, src, size, password)
	if err != nil {
		t.Fatalf("Encrypt %d bytes: %v", size, err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if want := encrypt.EncryptedSize(size); n != want || st.Size() != want {
		t.Fatalf("Encrypt %d bytes: wrote %d (the file has %d), EncryptedSize says %d", size, n, st.Size(), want)
	}
	return path
}

// TestEncryptRoundTripGo: Encrypt's files, of packages around every boundary
// and read in pieces of every size, are valid compound files that the
// test's own derivation decrypts (HMAC checked) to the package, and whose
// verifier refuses a wrong password.
func TestEncryptRoundTripGo(t *testing.T) {
	sizes := []int{0, 1, 15, 16, 17, 4080, 4081, 4095, 4096, 4097, 8192, 8193, 100_000, 1 << 20}
	readers := map[string]func(io.Reader) io.Reader{
		"whole": func(r io.Reader) io.Reader { return r },
		"half":  iotest.HalfReader,
		"bytes": iotest.OneByteReader,
	}
	for _, n := range sizes {
		for name, wrap := range readers {
			if name == "bytes" && n > 10_000 {
				continue
			}
			data := randomBytes(n, uint64(n))
			path := encryptStream(t, wrap(bytes.NewReader(data)), int64(n), "pässwörd 🔑")
			checkCompound(t, path)
			got, _ := streams(t, path)
			pkg := got["EncryptedPackage"]
			if want := 8 + (n+15)/16*16; len(pkg) != want {
				t.Errorf("size %d: EncryptedPackage is %d bytes, want %d", n, len(pkg), want)
			}
			plain, ok := decryptGo(t, got["EncryptionInfo"], pkg, "pässwörd 🔑")
			if !ok || !bytes.Equal(plain, data) {
				t.Fatalf("size %d, %s reads: decrypted package differs (verifier ok: %v)", n, name, ok)
			}
			if _, ok := decryptGo(t, got["EncryptionInfo"], pkg, "pässwörd 🔐"); ok {
				t.Fatalf("size %d: the verifier accepts a wrong password", n)
			}
		}
	}
}

// TestEncryptedSize: the size of Encrypt's file, also with another spin
// count (the EncryptionInfo stream is longer by its digits), and -1 for
// what Encrypt refuses.
func TestEncryptedSize(t *testing.T) {
	for _, n := range []int64{0, 1, 4080, 4081, 8_000_000} {
		for _, spin := range []int{1, 1000, encrypt.DefaultSpinCount} {
			want := encrypt.EncryptedSize(n, encrypt.SpinCount(spin))
			var c counter
			got, err := encrypt.Encrypt(&c, io.LimitReader(zeros{}, n), n, "pw", encrypt.SpinCount(spin))
			if err != nil {
				t.Fatal(err)
			}
			if got != want || c.n != want || want%512 != 0 || want < n {
				t.Errorf("size %d, spin count %d: wrote %d (counted %d), EncryptedSize %d", n, spin, got, c.n, want)
			}
		}
		if encrypt.EncryptedSize(n) != encrypt.EncryptedSize(n, encrypt.SpinCount(encrypt.DefaultSpinCount)) {
			t.Errorf("size %d: the default spin count is not DefaultSpinCount", n)
		}
	}
	for _, n := range []int64{-1, 1 << 31} {
		if s := encrypt.EncryptedSize(n); s != -1 {
			t.Errorf("EncryptedSize(%d) = %d, want -1", n, s)
		}
		if _, err := encrypt.Encrypt(io.Discard, zeros{}, n, "pw"); err == nil {
			t.Errorf("Encrypt of %d bytes accepted", n)
		}
	}
	if s := encrypt.EncryptedSize(1, encrypt.SpinCount(-1)); s != -1 {
		t.Errorf("EncryptedSize with spin count -1 = %d", s)
	}
}

// TestEncryptShort: a src that ends before size bytes is an error (io.ErrUnexpectedEOF),
// as is a failing src or dst; a bad password writes nothing.
func TestEncryptShort(t *testing.T) {
	for _, n := range []int64{1, 4080, 4096, 100_000} {
		var c counter
		_, err := encrypt.Encrypt(&c, bytes.NewReader(make([]byte, n-1)), n, "pw", encrypt.SpinCount(1))
		if !errors.Is(err, io.ErrUnexpectedEOF) {
			t.Errorf("%d bytes of %d: %v, want io.ErrUnexpectedEOF", n-1, n, err)
		}
	}
	boom := errors.New("boom")
	if _, err := encrypt.Encrypt(io.Discard, iotest.ErrReader(boom), 10, "pw", encrypt.SpinCount(1)); !errors.Is(err, boom) {
		t.Errorf("failing src: %v", err)
	}
	if _, err := encrypt.Encrypt(failWriter{boom}, zeros{}, 1<<20, "pw", encrypt.SpinCount(1)); !errors.Is(err, boom) {
		t.Errorf("failing dst: %v", err)
	}
	for _, pw := range []string{"", strings.Repeat("a", 256)} {
		var c counter
		if _, err := encrypt.Encrypt(&c, zeros{}, 10, pw); err == nil || c.n != 0 {
			t.Errorf("password of %d characters: %v, %d bytes written", len(pw), err, c.n)
		}
	}
}

type counter struct{ n int64 }

func (c *counter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

type zeros struct{}

func (zeros) Read(p []byte) (int, error) { clear(p); return len(p), nil }

type failWriter struct{ err error }

func (w failWriter) Write([]byte) (int, error) { return 0, w.err }

// streamWorkbook encrypts the plain file at path with encrypt.Encrypt.
func streamWorkbook(t testing.TB, plain, password string) string {
	t.Helper()
	f, err := os.Open(plain)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	return encryptStream(t, f, st.Size(), password)
}

// msoffcryptoRawScript is msoffcryptoScript's decryption with the password
// verifier and the HMAC checked, without OfficeFile.decrypt's last step,
// which takes any package that is not a ZIP (such as 1 random byte) for a
// wrong password.
const msoffcryptoRawScript = `
import sys, msoffcrypto
from msoffcrypto.method.ecma376_agile import ECMA376Agile
password = sys.stdin.read()
try:
    with open(sys.argv[1], "rb") as f, open(sys.argv[2], "wb") as out:
        o = msoffcrypto.OfficeFile(f)
        o.load_key(password=password, verify_password=True)
        assert o.type == "agile", o.type
        with o.file.openstream("EncryptedPackage") as stream:
            if not ECMA376Agile.verify_integrity(o.secret_key, o.info["keyDataSalt"], o.info["keyDataHashAlgorithm"],
                    o.info["keyDataBlockSize"], o.info["encryptedHmacKey"], o.info["encryptedHmacValue"], stream):
                raise Exception("HMAC differs")
            stream.seek(0)
            out.write(ECMA376Agile.decrypt(o.secret_key, o.info["keyDataSalt"], o.info["keyDataHashAlgorithm"], stream))
    print("ok")
except Exception as e:
    print(type(e).__name__, e)
`

// msoffcryptoRaw decrypts path with msoffcryptoRawScript; it returns the
// decrypted file's path and the script's verdict.
func msoffcryptoRaw(t testing.TB, path, password string) (string, string) {
	t.Helper()
	py := python3(t, "msoffcrypto")
	out := filepath.Join(t.TempDir(), "dec.bin")
	cmd := exec.Command(py, "-c", msoffcryptoRawScript, path, out)
	cmd.Stdin = strings.NewReader(password) // never on a command line
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("msoffcrypto: %v\n%s", err, res)
	}
	return out, strings.TrimSpace(string(res))
}

// TestEncryptMsoffcrypto: msoffcrypto-tool decrypts Encrypt's files (password
// verifier and HMAC checked) to exactly the plain bytes — packages of 0, 1,
// 4080 and 4081 bytes (around the mini stream cutoff) and workbooks of 1 and
// 160,000 rows (8 MB: DIFAT sectors) — openpyxl reads the workbooks'
// rows, and a wrong password is refused.
func TestEncryptMsoffcrypto(t *testing.T) {
	const password = "correct horse 배터리 staple"
	type pkg struct {
		name  string
		plain string // path
		rows  int    // -1: not a workbook
	}
	var pkgs []pkg
	for _, n := range []int{0, 1, 4080, 4081} {
		p := filepath.Join(t.TempDir(), "plain.bin")
		if err := os.WriteFile(p, randomBytes(n, uint64(n)), 0o600); err != nil {
			t.Fatal(err)
		}
		pkgs = append(pkgs, pkg{name: "bytes " + strconv.Itoa(n), plain: p, rows: -1})
	}
	rows := []int{1, 160_000}
	if testing.Short() {
		rows = rows[:1]
	}
	for _, r := range rows {
		_, p, _ := exportBoth(t, r, password)
		pkgs = append(pkgs, pkg{name: strconv.Itoa(r) + " rows", plain: p, rows: r})
	}
	for _, p := range pkgs {
		enc := streamWorkbook(t, p.plain, password)
		if p.rows == 160_000 {
			if difat := checkCompound(t, enc); difat == 0 {
				t.Errorf("%s: no DIFAT sectors", p.name)
			}
		}
		dec, verdict := msoffcryptoRaw(t, enc, password)
		if verdict != "ok" {
			t.Fatalf("%s: msoffcrypto: %s", p.name, verdict)
		}
		if a, b := fileSum(t, dec), fileSum(t, p.plain); a != b {
			t.Fatalf("%s: decrypted SHA-256 %s, plain %s", p.name, a, b)
		}
		if _, verdict := msoffcryptoRaw(t, enc, "not the password"); !strings.HasPrefix(verdict, "InvalidKeyError") {
			t.Errorf("%s: wrong password gives %q, want InvalidKeyError", p.name, verdict)
		}
		if p.rows < 0 {
			continue
		}
		// The workbooks also through msoffcrypto's own decrypt, which
		// checks that the result is a ZIP.
		if dec, verdict = msoffcrypto(t, enc, password, true); verdict != "ok" {
			t.Fatalf("%s: msoffcrypto: %s", p.name, verdict)
		}
		py := python3(t, "openpyxl")
		res, err := exec.Command(py, "-c", openpyxlScript, dec).Output()
		if err != nil {
			t.Fatalf("openpyxl: %v", err)
		}
		var books [1][][]any
		if err := json.Unmarshal(res, &books); err != nil {
			t.Fatal(err)
		}
		if len(books[0]) != p.rows+1 {
			t.Fatalf("%s: openpyxl read %d rows", p.name, len(books[0]))
		}
	}
}

// TestEncryptLibreOffice: LibreOffice opens a workbook written by Encrypt
// with the password, to the same CSV as the plain workbook's, and refuses
// a wrong one.
func TestEncryptLibreOffice(t *testing.T) {
	tool(t, "soffice")
	py := python3(t, "uno")
	const password = "LibreOffice 비밀번호"
	_, plain, _ := exportBoth(t, 1000, password)
	checkLibreOffice(t, py, streamWorkbook(t, plain, password), plain, password, "exportd_encrypt_stream_test")
}

func fileSum(t testing.TB, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(h.Sum(nil))
}
