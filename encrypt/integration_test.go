package encrypt_test

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exportd/exportd/bench/dataset"
	"github.com/exportd/exportd/encrypt"
	"github.com/exportd/exportd/xlsx"
)

// writeDataset writes rows of the standard benchmark dataset as a workbook.
func writeDataset(t testing.TB, dst io.Writer, rows int) {
	t.Helper()
	w := xlsx.NewWriter(dst)
	cols := make([]xlsx.Column, len(dataset.Columns))
	for i := range cols {
		cols[i] = xlsx.Column{Header: dataset.Columns[i], Width: dataset.Widths[i], NumFmt: dataset.NumFmts[i]}
	}
	if err := w.NewSheet("Sheet1", cols); err != nil {
		t.Fatal(err)
	}
	var g dataset.Generator
	row := make([]xlsx.Cell, 10)
	for i := range rows {
		r := g.Row(i)
		row[0], row[1], row[2] = xlsx.Int(r.ID), xlsx.String(r.Name), xlsx.String(r.Email)
		row[3], row[4], row[5] = xlsx.DateTime(r.SignupAt), xlsx.Float(r.ScoreAvg), xlsx.Int(r.Visits)
		row[6], row[7], row[8] = xlsx.Bool(r.Active), xlsx.Float(r.Balance), xlsx.String(r.Note)
		if r.NoteNull {
			row[8] = xlsx.Empty()
		}
		row[9] = xlsx.String(r.Category)
		if err := w.Write(row); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

// exportBoth writes one workbook of rows through the encrypting writer into a
// file and, byte for byte the same, into plain (a file), and returns the
// encrypted file's path, the plain file's path and the plain bytes' SHA-256.
func exportBoth(t testing.TB, rows int, password string) (enc, plain, sum string) {
	t.Helper()
	dir := t.TempDir()
	enc, plain = filepath.Join(dir, "enc.xlsx"), filepath.Join(dir, "plain.xlsx")
	ef, err := os.Create(enc)
	if err != nil {
		t.Fatal(err)
	}
	defer ef.Close()
	pf, err := os.Create(plain)
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	ew, err := encrypt.NewWriter(ef, password)
	if err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	writeDataset(t, io.MultiWriter(ew, pf, h), rows)
	if err := ew.Close(); err != nil {
		t.Fatal(err)
	}
	return enc, plain, hex.EncodeToString(h.Sum(nil))
}

// msoffcryptoScript decrypts argv[1] with the password on stdin into argv[2]
// with Debian's python3-msoffcrypto-tool, checking the password verifier
// and the data integrity HMAC, and prints "ok", or the exception's class.
const msoffcryptoScript = `
import sys, msoffcrypto
password = sys.stdin.read()
verify = sys.argv[3] == "verify"
try:
    with open(sys.argv[1], "rb") as f, open(sys.argv[2], "wb") as out:
        o = msoffcrypto.OfficeFile(f)
        o.load_key(password=password, verify_password=verify)
        o.decrypt(out, verify_integrity=verify)
    print("ok")
except Exception as e:
    print(type(e).__name__, e)
`

// msoffcrypto decrypts path; it returns the decrypted file's path and the
// script's verdict.
func msoffcrypto(t testing.TB, path, password string, verify bool) (string, string) {
	t.Helper()
	py := python3(t, "msoffcrypto")
	out := filepath.Join(t.TempDir(), "dec.xlsx")
	mode := "verify"
	if !verify {
		mode = "plain"
	}
	cmd := exec.Command(py, "-c", msoffcryptoScript, path, out, mode)
	cmd.Stdin = strings.NewReader(password) // never on a command line
	res, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("msoffcrypto: %v\n%s", err, res)
	}
	return out, strings.TrimSpace(string(res))
}

const openpyxlScript = `
import datetime, json, sys, openpyxl
out = []
for path in sys.argv[1:]:
    wb = openpyxl.load_workbook(path, read_only=True)
    rows = []
    for ws in wb.worksheets:
        for row in ws.iter_rows(values_only=True):
            rows.append([v.isoformat() if isinstance(v, datetime.datetime) else v for v in row])
    out.append(rows)
json.dump(out, sys.stdout)
`

// TestMsoffcrypto encrypts a workbook of the standard dataset, decrypts it
// with msoffcrypto-tool (password verifier and HMAC checked), and reads the
// decrypted and the plain workbooks with openpyxl: same bytes, same values.
func TestMsoffcrypto(t *testing.T) {
	const password = "correct horse 배터리 staple"
	for _, rows := range []int{0, 1, 4300} {
		enc, plain, _ := exportBoth(t, rows, password)
		dec, verdict := msoffcrypto(t, enc, password, true)
		if verdict != "ok" {
			t.Fatalf("%d rows: msoffcrypto: %s", rows, verdict)
		}
		a, err := os.ReadFile(dec)
		if err != nil {
			t.Fatal(err)
		}
		b, err := os.ReadFile(plain)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(a, b) {
			t.Fatalf("%d rows: decrypted workbook (%d bytes) differs from the plain one (%d bytes)", rows, len(a), len(b))
		}

		py := python3(t, "openpyxl")
		res, err := exec.Command(py, "-c", openpyxlScript, dec, plain).Output()
		if err != nil {
			t.Fatalf("openpyxl: %v", err)
		}
		var books [2][][]any
		if err := json.Unmarshal(res, &books); err != nil {
			t.Fatal(err)
		}
		if len(books[0]) != rows+1 {
			t.Fatalf("openpyxl read %d rows from the decrypted workbook, want %d", len(books[0]), rows+1)
		}
		ja, _ := json.Marshal(books[0])
		jb, _ := json.Marshal(books[1])
		if !bytes.Equal(ja, jb) {
			t.Fatalf("%d rows: openpyxl reads different values from the decrypted and the plain workbook", rows)
		}
		for i, r := range books[0][1:] {
			want := dataset.Get(i)
			if r[0] != float64(want.ID) || r[1] != want.Name || r[2] != want.Email || r[9] != want.Category {
				t.Fatalf("row %d: %v, want %+v", i, r, want)
			}
		}
	}
}

// TestMsoffcryptoWrongPassword: msoffcrypto refuses a wrong password, by the
// verifier and, without it, when the decrypted bytes are no ZIP.
func TestMsoffcryptoWrongPassword(t *testing.T) {
	enc, _, _ := exportBoth(t, 100, "right")
	for _, verify := range []bool{true, false} {
		_, verdict := msoffcrypto(t, enc, "wrong", verify)
		if !strings.HasPrefix(verdict, "InvalidKeyError") {
			t.Errorf("verify=%v: wrong password gives %q, want InvalidKeyError", verify, verdict)
		}
	}
}

// TestMsoffcryptoLarge: packages past 109 FAT sectors (7.1 MB: the DIFAT
// needs sectors of its own) and of ~65 MB (1.3M rows).
func TestMsoffcryptoLarge(t *testing.T) {
	if testing.Short() {
		t.Skip("large workbooks")
	}
	for _, rows := range []int{160_000, 1_300_000} {
		enc, plain, sum := exportBoth(t, rows, "pw")
		st, err := os.Stat(plain)
		if err != nil {
			t.Fatal(err)
		}
		os.Remove(plain)
		if rows == 160_000 { // the test's own decryption, through mscfb
			got, _ := streams(t, enc)
			dec, ok := decryptGo(t, got["EncryptionInfo"], got["EncryptedPackage"], "pw")
			if s := sha256.Sum256(dec); !ok || hex.EncodeToString(s[:]) != sum {
				t.Fatalf("%d rows: Go-side decryption differs", rows)
			}
		}
		difat := checkCompound(t, enc)
		t.Logf("%d rows: package %.1f MB, %d DIFAT sectors", rows, float64(st.Size())/1e6, difat)
		if difat == 0 {
			t.Errorf("%d rows: no DIFAT sectors for a %d-byte package", rows, st.Size())
		}
		dec, verdict := msoffcrypto(t, enc, "pw", true)
		if verdict != "ok" {
			t.Fatalf("%d rows: msoffcrypto: %s", rows, verdict)
		}
		f, err := os.Open(dec)
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			t.Fatal(err)
		}
		if got := hex.EncodeToString(h.Sum(nil)); got != sum {
			t.Fatalf("%d rows: decrypted SHA-256 %s, plain %s", rows, got, sum)
		}
		os.Remove(dec)
	}
}

// TestMsoffcryptoMiniStream: a package under 4,081 bytes has an
// EncryptedPackage stream shorter than the mini stream cutoff, which lives
// in the mini stream.
func TestMsoffcryptoMiniStream(t *testing.T) {
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	fw, err := zw.Create("a.txt")
	if err != nil {
		t.Fatal(err)
	}
	fw.Write([]byte("tiny"))
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	path := encryptFile(t, buf.Bytes(), "pw")
	got, _ := streams(t, path)
	if n := len(got["EncryptedPackage"]); n >= 4096 {
		t.Fatalf("EncryptedPackage of %d bytes", n)
	}
	dec, verdict := msoffcrypto(t, path, "pw", true)
	if verdict != "ok" {
		t.Fatalf("msoffcrypto: %s", verdict)
	}
	b, err := os.ReadFile(dec)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(b, buf.Bytes()) {
		t.Fatal("decrypted package differs")
	}
}

// libreofficeScript opens argv[3:] pairs (workbook, password or "") in a
// headless LibreOffice through UNO and stores each first sheet as CSV next
// to it (".csv"), printing "ok" or "refused" per file. The passwords come
// on stdin, one per line.
const libreofficeScript = `
import os, subprocess, sys, time, uno
from com.sun.star.beans import PropertyValue
def pv(n, v):
    p = PropertyValue(); p.Name = n; p.Value = v; return p
profile, pipe = sys.argv[1], sys.argv[2]
passwords = sys.stdin.read().split("\n")
proc = subprocess.Popen(["soffice", "--headless", "--invisible", "--norestore", "--nologo",
    "-env:UserInstallation=" + uno.systemPathToFileUrl(profile),
    "--accept=pipe,name=%s;urp;" % pipe], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    local = uno.getComponentContext()
    resolver = local.ServiceManager.createInstanceWithContext("com.sun.star.bridge.UnoUrlResolver", local)
    for _ in range(300):
        try:
            ctx = resolver.resolve("uno:pipe,name=%s;urp;StarOffice.ComponentContext" % pipe)
            break
        except Exception:
            time.sleep(0.2)
    desktop = ctx.ServiceManager.createInstanceWithContext("com.sun.star.frame.Desktop", ctx)
    for path, pw in zip(sys.argv[3:], passwords):
        props = [pv("Hidden", True)]
        if pw:
            props.append(pv("Password", pw))
        try:
            doc = desktop.loadComponentFromURL(uno.systemPathToFileUrl(path), "_blank", 0, tuple(props))
        except Exception:
            doc = None
        if doc is None:
            print("refused"); continue
        doc.storeToURL(uno.systemPathToFileUrl(path + ".csv"),
            (pv("FilterName", "Text - txt - csv (StarCalc)"), pv("FilterOptions", "44,34,76,1")))
        doc.close(True)
        print("ok")
    try:
        desktop.terminate()
    except Exception:
        pass
finally:
    try:
        proc.wait(timeout=30)
    except Exception:
        proc.kill()
`

// TestLibreOffice opens the encrypted workbook in LibreOffice with the
// password (its own compound file reader and agile decryption) and saves
// it as CSV: the same CSV as the plain workbook's. A wrong password is
// refused.
func TestLibreOffice(t *testing.T) {
	tool(t, "soffice")
	py := python3(t, "uno")
	const password = "LibreOffice 비밀번호"
	enc, plain, _ := exportBoth(t, 1000, password)
	checkLibreOffice(t, py, enc, plain, password, "exportd_encrypt_test")
}

// checkLibreOffice opens the encrypted workbook enc with password in
// LibreOffice (through py, a python3 with uno) and saves it as CSV: the
// same CSV as plain's; a wrong password is refused. pipe names the UNO
// connection.
func checkLibreOffice(t *testing.T, py, enc, plain, password, pipe string) {
	t.Helper()
	wrong := enc + ".wrong.xlsx"
	if err := os.Link(enc, wrong); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(py, "-c", libreofficeScript, t.TempDir(), pipe, enc, plain, wrong)
	cmd.Stdin = strings.NewReader(password + "\n\nnot the password")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("LibreOffice: %v\n%s", err, out)
	}
	if got := strings.Fields(string(out)); strings.Join(got, " ") != "ok ok refused" {
		t.Fatalf("LibreOffice: %q, want ok ok refused", out)
	}
	a, err := os.ReadFile(enc + ".csv")
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(plain + ".csv")
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a, b) || bytes.Count(a, []byte("\n")) < 1001 {
		t.Fatalf("LibreOffice CSV of the encrypted workbook (%d bytes) differs from the plain one's (%d bytes)", len(a), len(b))
	}
}
