package main

import (
	"bytes"
	"context"
	"database/sql"
	"encoding/csv"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
	"golang.org/x/sys/unix"
)

// exportdBin is the exportd binary built once for the tests (without the
// race detector: these tests check the process's behaviour).
var exportdBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "exportd-cli")
	if err != nil {
		panic(err)
	}
	exportdBin = filepath.Join(dir, "exportd")
	build := exec.Command("go", "build", "-o", exportdBin, ".")
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		panic("build exportd: " + err.Error() + "\n" + string(out))
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// run runs the exportd binary in dir and returns stdout, stderr and the exit status.
func run(t *testing.T, dir string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	cmd := exec.Command(exportdBin, args...)
	cmd.Dir = dir
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	var exit *exec.ExitError
	switch {
	case err == nil:
	case errors.As(err, &exit):
		code = exit.ExitCode()
	default:
		t.Fatal(err)
	}
	return o.String(), e.String(), code
}

// demo prepares a small demo in a temporary directory once per test.
func demo(t *testing.T) (dir, cfg string) {
	t.Helper()
	dir = t.TempDir()
	devnull, _ := os.Open(os.DevNull)
	defer devnull.Close()
	cfg, err := prepareDemo(context.Background(), filepath.Join(dir, "demo"), 2000, devnull)
	if err != nil {
		t.Fatal(err)
	}
	return dir, cfg
}

func TestVersion(t *testing.T) {
	out, _, code := run(t, t.TempDir(), "version")
	if code != 0 || !strings.HasPrefix(out, "exportd ") {
		t.Fatalf("version: %q, exit %d", out, code)
	}
}

func TestExportDatasetXLSX(t *testing.T) {
	dir, cfg := demo(t)
	_, stderr, code := run(t, dir, "export", "--config", cfg, "--dataset", "member_scores", "--param", "from=2019-01-01", "-o", "회원.xlsx",
		"--roles", "admin", "--purpose", "score_review", "--purpose-text", "checking the averages of every member")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	f, err := excelize.OpenFile(filepath.Join(dir, "회원.xlsx"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sheet := f.GetSheetName(0)
	if sheet != "회원 점수" {
		t.Errorf("sheet %q", sheet)
	}
	// marking: true: the OS user who exported it, in the printed header
	// and the document properties.
	if hf, err := f.GetHeaderFooter(sheet); err != nil || hf == nil || !strings.HasPrefix(hf.OddHeader, "&L내려받은 사람: "+localUser()+"&R") {
		t.Errorf("header/footer %+v %v", hf, err)
	}
	if p, err := f.GetDocProps(); err != nil || p.Creator != localUser() {
		t.Errorf("document properties %+v %v", p, err)
	}
	rows, err := f.GetRows(sheet, excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	if len(rows) != 4301 {
		t.Fatalf("%d rows, want 4,300 members + header", len(rows))
	}
	if got := strings.Join(rows[0], ","); got != "회원번호,이름,이메일,전화번호,지점,등급,가입일,응시 횟수,평균 점수,최근 응시" {
		t.Errorf("header %q", got)
	}
	// Every average equals the database's own, member by member.
	db, err := sql.Open("sqlite", filepath.Join(dir, "demo", "demo.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	q, err := db.Query(`SELECT m.id, m.name, avg(r.score) FROM members m JOIN results r ON r.member_id = m.id GROUP BY m.id ORDER BY m.id`)
	if err != nil {
		t.Fatal(err)
	}
	defer q.Close()
	i := 1
	for ; q.Next(); i++ {
		var id int64
		var name string
		var avg float64
		if err := q.Scan(&id, &name, &avg); err != nil {
			t.Fatal(err)
		}
		got, _ := strconv.ParseFloat(rows[i][8], 64)
		if rows[i][0] != strconv.FormatInt(id, 10) || rows[i][1] != name || got != avg {
			t.Fatalf("row %d = %q, want id %d %s avg %v", i, rows[i][:9], id, name, avg)
		}
	}
	if i != 4301 {
		t.Fatalf("database has %d members", i-1)
	}
}

func TestExportQueryCSVToStdout(t *testing.T) {
	dir, _ := demo(t)
	out, stderr, code := run(t, dir, "export", "--db", "sqlite:demo/demo.db", "--query",
		"SELECT id, name, note FROM accounts WHERE id IN (1, 2, 3, 4) ORDER BY id", "--format", "csv", "-o", "-")
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr)
	}
	if !strings.HasPrefix(out, "\xEF\xBB\xBF") {
		t.Fatalf("no BOM: %q", out)
	}
	records, err := csv.NewReader(strings.NewReader(out[3:])).ReadAll()
	if err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"id", "name", "note"}, {"1", "김민준", ""}, {"2", "이민준", "R&D, priority 1"},
		{"3", "박민준", `said "hi" #2`}, {"4", "최민준", "line1\nline2 #3"}}
	if len(records) != len(want) {
		t.Fatalf("got %q", records)
	}
	for i := range want {
		if strings.Join(records[i], "|") != strings.Join(want[i], "|") {
			t.Errorf("record %d = %q, want %q", i, records[i], want[i])
		}
	}
}

func TestExportBadInput(t *testing.T) {
	dir, cfg := demo(t)
	tests := []struct {
		name string
		args []string
		code int
		want string // in the one-line error
	}{
		{"unknown dataset", []string{"export", "--config", cfg, "--dataset", "nope", "-o", "x.csv"}, 2, `dataset "nope"`},
		{"ill-typed", []string{"export", "--config", cfg, "--dataset", "member_scores", "--param", "from=yesterday", "-o", "x.csv", "--roles", "admin", "--purpose", "score_review", "--purpose-text", "a test of bad parameters"}, 2, `parameter "from"`},
		{"not an enum value", []string{"export", "--config", cfg, "--dataset", "member_scores", "--param", "grades=gold' OR 1=1 --", "-o", "x.csv", "--roles", "admin", "--purpose", "score_review", "--purpose-text", "a test of bad parameters"}, 2, `parameter "grades"`},
		{"unknown parameter", []string{"export", "--config", cfg, "--dataset", "member_scores", "--param", "limit=5", "-o", "x.csv", "--roles", "admin", "--purpose", "score_review", "--purpose-text", "a test of bad parameters"}, 2, `parameter "limit"`},
		{"injection in a date", []string{"export", "--config", cfg, "--dataset", "member_scores", "--param", "from=2019-01-01; DROP TABLE members", "-o", "x.csv", "--roles", "admin", "--purpose", "score_review", "--purpose-text", "a test of bad parameters"}, 2, `parameter "from"`},
		{"no source", []string{"export", "-o", "x.csv"}, 2, "--db"},
		{"db without query", []string{"export", "--db", "sqlite:demo/demo.db"}, 2, "--query"},
		{"bad url", []string{"export", "--db", "oracle://x", "--query", "SELECT 1", "-o", "x.csv"}, 1, "oracle"},
		{"missing sqlite file", []string{"export", "--db", "sqlite:nope.db", "--query", "SELECT 1", "-o", "x.csv"}, 1, "nope.db"},
		{"sql error", []string{"export", "--db", "sqlite:demo/demo.db", "--query", "SELECT * FROM nope", "-o", "x.csv"}, 1, "no such table"},
		{"missing config", []string{"export", "--config", "nope.yaml", "--dataset", "x"}, 2, "nope.yaml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := run(t, dir, tt.args...)
			if code != tt.code {
				t.Errorf("exit %d, want %d; stderr: %s", code, tt.code, stderr)
			}
			lines := strings.Split(strings.TrimSpace(stderr), "\n")
			if len(lines) != 1 || !strings.HasPrefix(lines[0], "exportd: ") || !strings.Contains(lines[0], tt.want) {
				t.Errorf("stderr %q: want one line 'exportd: …' naming %q", stderr, tt.want)
			}
			if _, err := os.Stat(filepath.Join(dir, "x.csv")); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("x.csv exists after a failed export")
			}
		})
	}
	// The data is untouched.
	out, stderr, code := run(t, dir, "export", "--db", "sqlite:demo/demo.db", "--query", "SELECT count(*) AS n FROM members", "--format", "csv", "--no-bom", "-o", "-")
	if code != 0 || out != "n\n4300\n" {
		t.Fatalf("members after the bad inputs: %q %s", out, stderr)
	}
}

func TestExportFailureLeavesNoFile(t *testing.T) {
	dir, _ := demo(t)
	// The query fails at row 1,500, after rows have been written.
	_, stderr, code := run(t, dir, "export", "--db", "sqlite:demo/demo.db", "--query",
		"SELECT id, CASE WHEN id = 1500 THEN json('broken') ELSE name END AS name FROM accounts ORDER BY id", "-o", "out.xlsx")
	if code != 1 || !strings.Contains(stderr, "malformed JSON") {
		t.Fatalf("exit %d, stderr %q", code, stderr)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "demo" {
			t.Errorf("left behind: %s", e.Name())
		}
	}
}

// An output that is not a regular file is written in place, never renamed
// over: /dev/null stays a device, a named pipe receives the rows. A
// symbolic link keeps pointing at the file it names, which gets the rows.
func TestExportToSpecialFiles(t *testing.T) {
	dir, _ := demo(t)
	query := []string{"export", "--db", "sqlite:demo/demo.db", "--query", "SELECT id FROM accounts WHERE id <= 3 ORDER BY id", "--format", "csv", "--no-bom"}

	// A null device of the test's own (as root), so that a regression
	// does not replace the machine's /dev/null.
	null := filepath.Join(dir, "null")
	if err := syscall.Mknod(null, syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		null = os.DevNull
	}
	if _, stderr, code := run(t, dir, append(query, "-o", null)...); code != 0 {
		t.Fatalf("-o %s: exit %d: %s", null, code, stderr)
	}
	if fi, err := os.Stat(null); err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		t.Fatalf("%s after the export: %v %v, want a character device", null, fi.Mode(), err)
	}

	fifo := filepath.Join(dir, "rows.fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	got := make(chan []byte, 1)
	go func() {
		b, _ := os.ReadFile(fifo) // opens once the export does
		got <- b
	}()
	if _, stderr, code := run(t, dir, append(query, "-o", fifo)...); code != 0 {
		t.Fatalf("-o FIFO: exit %d: %s", code, stderr)
	}
	select {
	case b := <-got:
		if string(b) != "id\n1\n2\n3\n" {
			t.Errorf("the pipe received %q", b)
		}
	case <-time.After(10 * time.Second):
		os.WriteFile(fifo, nil, 0) // lets the reader go
		t.Fatal("the export never opened the pipe")
	}
	if fi, err := os.Lstat(fifo); err != nil || fi.Mode()&os.ModeNamedPipe == 0 {
		t.Errorf("the pipe after the export: %v %v", fi.Mode(), err)
	}

	if err := os.WriteFile(filepath.Join(dir, "target.csv"), []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("target.csv", filepath.Join(dir, "link.csv")); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := run(t, dir, append(query, "-o", "link.csv")...); code != 0 {
		t.Fatalf("-o link: exit %d: %s", code, stderr)
	}
	if fi, err := os.Lstat(filepath.Join(dir, "link.csv")); err != nil || fi.Mode()&os.ModeSymlink == 0 {
		t.Errorf("link.csv after the export: %v %v, want the link kept", fi.Mode(), err)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "target.csv")); string(b) != "id\n1\n2\n3\n" {
		t.Errorf("the link's target holds %q", b)
	}

	_, stderr, code := run(t, dir, append(query, "-o", "demo")...)
	if code != 2 || !strings.Contains(stderr, "is a directory") {
		t.Errorf("-o DIRECTORY: exit %d: %s", code, stderr)
	}

	// A terminal named by its path gets no XLSX, as with -o -.
	ptmx, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer ptmx.Close()
	if err := unix.IoctlSetPointerInt(int(ptmx.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		t.Fatal(err)
	}
	n, err := unix.IoctlGetUint32(int(ptmx.Fd()), unix.TIOCGPTN)
	if err != nil {
		t.Fatal(err)
	}
	tty := fmt.Sprintf("/dev/pts/%d", n)
	_, stderr, code = run(t, dir, "export", "--db", "sqlite:demo/demo.db", "--query", "SELECT 1 AS x", "--format", "xlsx", "-o", tty)
	if code != 2 || !strings.Contains(stderr, "terminal") {
		t.Errorf("-o %s (a terminal) as XLSX: exit %d: %s", tty, code, stderr)
	}
}

func TestCheck(t *testing.T) {
	dir, cfg := demo(t)
	out, stderr, code := run(t, dir, "check", "--config", cfg)
	if code != 0 || !strings.Contains(out, "4 dataset(s) OK") {
		t.Fatalf("check: exit %d, %q %q", code, out, stderr)
	}
	// A column the query does not return is reported with file, dataset and field.
	data, _ := os.ReadFile(cfg)
	bad := strings.Replace(string(data), "{name: tests, header: 응시 횟수", "{name: test_count, header: 응시 횟수", 1)
	badPath := filepath.Join(dir, "demo", "bad.yaml")
	if err := os.WriteFile(badPath, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code = run(t, dir, "check", "--config", badPath)
	if code != 2 || !strings.Contains(stderr, `dataset "member_scores"`) || !strings.Contains(stderr, "columns[7]") {
		t.Fatalf("check bad: exit %d, %q", code, stderr)
	}
}
