package encrypt_test

import (
	"bytes"
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/sha512"
	"encoding/base64"
	"encoding/binary"
	"encoding/xml"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"unicode"
	"unicode/utf16"

	"github.com/exportd/exportd/encrypt"
	"github.com/richardlehane/mscfb"
)

// encryptFile encrypts data, written in chunks of the given sizes (cycled),
// into a new file and returns its path.
func encryptFile(t testing.TB, data []byte, password string, chunks ...int) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "enc.xlsx")
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w, err := encrypt.NewWriter(f, password)
	if err != nil {
		t.Fatal(err)
	}
	if len(chunks) == 0 {
		chunks = []int{len(data) + 1}
	}
	for i, rest := 0, data; len(rest) > 0; i++ {
		n := min(chunks[i%len(chunks)], len(rest))
		if m, err := w.Write(rest[:n]); err != nil || m != n {
			t.Fatalf("Write: %d, %v", m, err)
		}
		rest = rest[n:]
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	st, err := f.Stat()
	if err != nil {
		t.Fatal(err)
	}
	if st.Size() != w.Size() {
		t.Fatalf("file is %d bytes, Size says %d", st.Size(), w.Size())
	}
	return path
}

// streams reads a compound file with github.com/richardlehane/mscfb and
// returns its streams by path ("\x06DataSpaces/Version") and every entry's
// path, storages included.
func streams(t testing.TB, path string) (map[string][]byte, []string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, err := mscfb.New(f)
	if err != nil {
		t.Fatalf("mscfb: %v", err)
	}
	out := map[string][]byte{}
	var names []string
	full := map[string]string{}
	for e, err := r.Next(); err != io.EOF; e, err = r.Next() {
		if err != nil {
			t.Fatalf("mscfb: %v", err)
		}
		// mscfb drops a leading control character such as \x06 from a
		// name and keeps it in Initial; put it back.
		base := e.Name
		if e.Initial != 0 && !unicode.IsPrint(rune(e.Initial)) {
			base = string(rune(e.Initial)) + base
		}
		var parts []string
		for _, p := range e.Path {
			parts = append(parts, full[p])
		}
		name := strings.Join(append(parts, base), "/")
		full[e.Name] = base
		names = append(names, name)
		if e.Size > 0 {
			b := make([]byte, e.Size)
			if _, err := io.ReadFull(e, b); err != nil {
				t.Fatalf("mscfb read %s: %v", name, err)
			}
			out[name] = b
		}
	}
	return out, names
}

// descriptor is the XML of the EncryptionInfo stream.
type descriptor struct {
	KeyData struct {
		SaltValue     string `xml:"saltValue,attr"`
		HashAlgorithm string `xml:"hashAlgorithm,attr"`
		KeyBits       int    `xml:"keyBits,attr"`
		BlockSize     int    `xml:"blockSize,attr"`
	} `xml:"keyData"`
	DataIntegrity struct {
		EncryptedHmacKey   string `xml:"encryptedHmacKey,attr"`
		EncryptedHmacValue string `xml:"encryptedHmacValue,attr"`
	} `xml:"dataIntegrity"`
	KeyEncryptor struct {
		URI          string `xml:"uri,attr"`
		EncryptedKey struct {
			SpinCount                  int    `xml:"spinCount,attr"`
			SaltValue                  string `xml:"saltValue,attr"`
			HashAlgorithm              string `xml:"hashAlgorithm,attr"`
			CipherAlgorithm            string `xml:"cipherAlgorithm,attr"`
			KeyBits                    int    `xml:"keyBits,attr"`
			EncryptedVerifierHashInput string `xml:"encryptedVerifierHashInput,attr"`
			EncryptedVerifierHashValue string `xml:"encryptedVerifierHashValue,attr"`
			EncryptedKeyValue          string `xml:"encryptedKeyValue,attr"`
		} `xml:"http://schemas.microsoft.com/office/2006/keyEncryptor/password encryptedKey"`
	} `xml:"keyEncryptors>keyEncryptor"`
}

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("base64 %q: %v", s, err)
	}
	return b
}

func aesCBCDecrypt(t testing.TB, key, iv, data []byte) []byte {
	t.Helper()
	b, err := aes.NewCipher(key)
	if err != nil {
		t.Fatal(err)
	}
	if len(data)%16 != 0 {
		t.Fatalf("ciphertext of %d bytes", len(data))
	}
	out := make([]byte, len(data))
	cipher.NewCBCDecrypter(b, iv).CryptBlocks(out, data)
	return out
}

func sum512(parts ...[]byte) []byte {
	h := sha512.New()
	for _, p := range parts {
		h.Write(p)
	}
	return h.Sum(nil)
}

// decryptGo decrypts an encrypted package following MS-OFFCRYPTO 2.3.4.11–15
// step by step, independently of the package's code, checking the password
// verifier and the HMAC. ok is false when the verifier refuses the password.
func decryptGo(t testing.TB, info, pkg []byte, password string) (plain []byte, ok bool) {
	t.Helper()
	if len(info) < 8 || binary.LittleEndian.Uint16(info) != 4 || binary.LittleEndian.Uint16(info[2:]) != 4 ||
		binary.LittleEndian.Uint32(info[4:]) != 0x40 {
		t.Fatalf("EncryptionInfo header % x", info[:min(8, len(info))])
	}
	var d descriptor
	if err := xml.Unmarshal(info[8:], &d); err != nil {
		t.Fatalf("EncryptionInfo XML: %v", err)
	}
	ek := d.KeyEncryptor.EncryptedKey
	if d.KeyEncryptor.URI != "http://schemas.microsoft.com/office/2006/keyEncryptor/password" ||
		ek.HashAlgorithm != "SHA512" || ek.CipherAlgorithm != "AES" || ek.KeyBits != 256 ||
		d.KeyData.HashAlgorithm != "SHA512" || d.KeyData.KeyBits != 256 || d.KeyData.BlockSize != 16 {
		t.Fatalf("descriptor: %+v", d)
	}
	if ek.SpinCount != 100000 {
		t.Errorf("spinCount %d", ek.SpinCount)
	}
	salt := b64(t, ek.SaltValue)
	pw := utf16.Encode([]rune(password))
	pwBytes := make([]byte, 2*len(pw))
	for i, c := range pw {
		binary.LittleEndian.PutUint16(pwBytes[2*i:], c)
	}
	h := sum512(salt, pwBytes)
	for i := 0; i < ek.SpinCount; i++ {
		h = sum512(binary.LittleEndian.AppendUint32(nil, uint32(i)), h)
	}
	key := func(block ...byte) []byte { return sum512(h, block)[:32] }
	input := aesCBCDecrypt(t, key(0xfe, 0xa7, 0xd2, 0x76, 0x3b, 0x4b, 0x9e, 0x79), salt, b64(t, ek.EncryptedVerifierHashInput))
	value := aesCBCDecrypt(t, key(0xd7, 0xaa, 0x0f, 0x6d, 0x30, 0x61, 0x34, 0x4e), salt, b64(t, ek.EncryptedVerifierHashValue))
	if !bytes.Equal(sum512(input), value[:64]) {
		return nil, false
	}
	secret := aesCBCDecrypt(t, key(0x14, 0x6e, 0x0b, 0xe7, 0xab, 0xac, 0xd0, 0xd6), salt, b64(t, ek.EncryptedKeyValue))
	keySalt := b64(t, d.KeyData.SaltValue)

	hmacKey := aesCBCDecrypt(t, secret, sum512(keySalt, []byte{0x5f, 0xb2, 0xad, 0x01, 0x0c, 0xb9, 0xe1, 0xf6})[:16], b64(t, d.DataIntegrity.EncryptedHmacKey))
	hmacValue := aesCBCDecrypt(t, secret, sum512(keySalt, []byte{0xa0, 0x67, 0x7f, 0x02, 0xb2, 0x2c, 0x84, 0x33})[:16], b64(t, d.DataIntegrity.EncryptedHmacValue))
	m := hmac.New(sha512.New, hmacKey[:64])
	m.Write(pkg)
	if !hmac.Equal(m.Sum(nil), hmacValue[:64]) {
		t.Errorf("HMAC of the EncryptedPackage stream does not match dataIntegrity")
	}

	size := binary.LittleEndian.Uint64(pkg)
	enc := pkg[8:]
	if want := (size + 15) / 16 * 16; uint64(len(enc)) != want {
		t.Errorf("EncryptedPackage holds %d encrypted bytes for %d plain, want %d", len(enc), size, want)
	}
	for i := 0; len(enc) > 0; i++ {
		n := min(4096, len(enc))
		iv := sum512(keySalt, binary.LittleEndian.AppendUint32(nil, uint32(i)))[:16]
		plain = append(plain, aesCBCDecrypt(t, secret, iv, enc[:n])...)
		enc = enc[n:]
	}
	if uint64(len(plain)) < size {
		t.Fatalf("decrypted %d bytes, StreamSize %d", len(plain), size)
	}
	for _, c := range plain[size:] {
		if c != 0 {
			t.Errorf("padding is not zero")
			break
		}
	}
	return plain[:size], true
}

// tool finds an external program, or skips the test; with
// EXPORTD_REQUIRE_INTEGRATION=1 a missing tool fails it instead.
func tool(t testing.TB, name string, check ...string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err == nil && len(check) > 0 {
		// The reason is the check's last line (python3's "No module
		// named 'openpyxl'"), not just its exit status.
		var out []byte
		if out, err = exec.Command(path, check...).CombinedOutput(); err != nil {
			if lines := strings.Split(strings.TrimSpace(string(out)), "\n"); lines[len(lines)-1] != "" {
				err = errors.New(lines[len(lines)-1])
			}
		}
	}
	if err != nil {
		if os.Getenv("EXPORTD_REQUIRE_INTEGRATION") == "1" {
			t.Fatalf("%s not usable (EXPORTD_REQUIRE_INTEGRATION=1): %v", name, err)
		}
		t.Skipf("%s not usable: %v", name, err)
	}
	return path
}

// python3 returns Debian's python3 if it can import the given modules.
func python3(t testing.TB, modules string) string {
	t.Helper()
	name := "/usr/bin/python3"
	if _, err := os.Stat(name); err != nil {
		name = "python3"
	}
	return tool(t, name, "-c", "import "+modules)
}
