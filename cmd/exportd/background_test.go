package main

import (
	"bytes"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/xuri/excelize/v2"
)

// serveDemo runs `exportd serve --jobs` on the demo of dir and returns its
// URL. The demo's datasets file lets requests from this machine in as the
// anonymous admin, so no token is needed.
func serveDemo(t *testing.T, dir, cfg string) string {
	t.Helper()
	url, _, _ := startServe(t, dir, cfg)
	return url
}

// startServe is serveDemo that also returns the server's process and the
// file of its log.
func startServe(t *testing.T, dir, cfg string) (url string, proc *os.Process, logPath string) {
	t.Helper()
	return startServeWith(t, dir, cfg, "--link-secret", "background-test-secret-0123456789")
}

// startServeWith is startServe with the jobs' secret given by secretArgs.
func startServeWith(t *testing.T, dir, cfg string, secretArgs ...string) (url string, proc *os.Process, logPath string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	logf, err := os.Create(filepath.Join(dir, "serve.log"))
	if err != nil {
		t.Fatal(err)
	}
	args := append([]string{"serve", "--config", cfg, "--addr", addr, "--jobs",
		"--jobs-storage", "file://" + filepath.Join(dir, "results"), "--jobs-poll", "100ms"}, secretArgs...)
	cmd := exec.Command(exportdBin, args...)
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Signal(syscall.SIGTERM)
		cmd.Wait()
		logf.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("serve log:\n%s", b)
		}
	})
	url = "http://" + addr
	for deadline := time.Now().Add(30 * time.Second); ; {
		resp, err := http.Get(url + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return url, cmd.Process, logf.Name()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not start: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// export --background runs the export as a job on a real server and
// downloads its result, which equals the same export made directly: the
// same bytes for CSV, the same cells for XLSX (whose document properties
// differ), and for the personal dataset the purpose goes with the job.
func TestExportBackground(t *testing.T) {
	dir, cfg := demo(t)
	url := serveDemo(t, dir, cfg)
	export := func(args ...string) {
		t.Helper()
		if _, stderr, code := run(t, dir, append([]string{"export", "-q"}, args...)...); code != 0 {
			t.Fatalf("export %v: exit %d: %s", args, code, stderr)
		}
	}
	read := func(name string) []byte {
		t.Helper()
		b, err := os.ReadFile(filepath.Join(dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}

	export("--background", "--server", url, "--dataset", "accounts", "-o", "bg.csv")
	export("--config", cfg, "--dataset", "accounts", "-o", "direct.csv")
	if bg, direct := read("bg.csv"), read("direct.csv"); len(bg) < 100_000 || !bytes.Equal(bg, direct) {
		t.Errorf("background CSV (%d bytes) differs from the direct export (%d bytes)", len(bg), len(direct))
	}

	export("--background", "--server", url, "--dataset", "accounts", "--param", "categories=gold,silver", "-o", "bg.xlsx")
	export("--config", cfg, "--dataset", "accounts", "--param", "categories=gold,silver", "-o", "direct.xlsx")
	if bg, direct := xlsxRows(t, filepath.Join(dir, "bg.xlsx")), xlsxRows(t, filepath.Join(dir, "direct.xlsx")); len(bg) < 100 || !equalRows(bg, direct) {
		t.Errorf("background XLSX (%d rows) differs from the direct export (%d rows)", len(bg), len(direct))
	}

	// The personal dataset: the purpose is required by the server too.
	purpose := []string{"--purpose", "score_review", "--purpose-text", "background export test of the scores"}
	if _, stderr, code := run(t, dir, "export", "-q", "--background", "--server", url, "--dataset", "member_scores", "-o", "nopurpose.csv"); code == 0 ||
		!bytes.Contains([]byte(stderr), []byte("bad_purpose")) {
		t.Errorf("background without a purpose: exit %d, %q", code, stderr)
	}
	export(append([]string{"--background", "--server", url, "--dataset", "member_scores", "-o", "bg-scores.csv"}, purpose...)...)
	export(append([]string{"--config", cfg, "--dataset", "member_scores", "--roles", "admin", "-o", "direct-scores.csv"}, purpose...)...)
	if bg, direct := read("bg-scores.csv"), read("direct-scores.csv"); len(bg) < 1000 || !bytes.Equal(bg, direct) {
		t.Errorf("background member_scores (%d bytes) differs from the direct export (%d bytes)", len(bg), len(direct))
	}
}

func xlsxRows(t *testing.T, path string) [][]string {
	t.Helper()
	f, err := excelize.OpenFile(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rows, err := f.GetRows(f.GetSheetName(0), excelize.Options{RawCellValue: true})
	if err != nil {
		t.Fatal(err)
	}
	return rows
}

func equalRows(a, b [][]string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
		for j := range a[i] {
			if a[i][j] != b[i][j] {
				return false
			}
		}
	}
	return true
}
