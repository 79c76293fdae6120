package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// testsummary runs a real go test -json on a small module: it prints the
// packages' ok/FAIL lines and the failed test's output as go test does,
// hides passing tests' output, ends with the skipped tests grouped by
// what they need, and exits with go test's status.
func TestSummary(t *testing.T) {
	dir := t.TempDir()
	bin := filepath.Join(dir, "testsummary")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	mod := filepath.Join(dir, "m")
	files := map[string]string{
		"go.mod": "module example.com/m\n\ngo 1.22\n",
		"a/a_test.go": `package a
import "testing"
func TestQuiet(t *testing.T) { t.Log("passing noise") }
func TestPostgres(t *testing.T) { t.Skip("EXPORTD_POSTGRES_URL is not set") }
func TestSub(t *testing.T) {
	t.Run("pg", func(t *testing.T) { t.Skipf("%s is not set", "EXPORTD_POSTGRES_URL") })
	t.Run("odd", func(t *testing.T) { t.Skip("the moon is full") })
}
`,
		"b/b_test.go": `package b
import "testing"
func TestBroken(t *testing.T) { t.Log("before"); t.Error("the sum is 5, want 4") }
func TestPython(t *testing.T) { t.Skip("/usr/bin/python3 cannot import openpyxl: ModuleNotFoundError: No module named 'openpyxl'") }
`,
		"c/c.go": "package c\n",
	}
	for name, content := range files {
		p := filepath.Join(mod, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	run := func(args ...string) (string, int) {
		t.Helper()
		cmd := exec.Command(bin, append([]string{"go", "test", "-json", "-count=1"}, args...)...)
		cmd.Dir = mod
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, &out
		err := cmd.Run()
		var exit *exec.ExitError
		if err != nil && !errors.As(err, &exit) {
			t.Fatal(err)
		}
		return out.String(), cmd.ProcessState.ExitCode()
	}

	out, code := run("./...")
	if code != 1 {
		t.Errorf("exit %d, want go test's 1", code)
	}
	for _, want := range []string{
		"ok  \texample.com/m/a\t",
		"?   \texample.com/m/c\t[no test files]\n",
		"--- FAIL: TestBroken (",
		"b_test.go:3: the sum is 5, want 4\n",
		"FAIL\texample.com/m/b\t",
		"\n4 tests skipped:\n",
		"    2  PostgreSQL (example.com/m/a 2)\n         why: EXPORTD_POSTGRES_URL is not set\n         on:  EXPORTD_POSTGRES_URL=",
		"    1  Python modules (example.com/m/b 1)\n         why: /usr/bin/python3 cannot import openpyxl: ModuleNotFoundError: No module named 'openpyxl'\n         on:  apt-get install python3-openpyxl",
		"    1  the moon is full (example.com/m/a 1)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	for _, unwanted := range []string{"passing noise", "=== RUN", "--- PASS", "--- SKIP", "\nPASS\n", `"Action"`} {
		if strings.Contains(out, unwanted) {
			t.Errorf("output has %q:\n%s", unwanted, out)
		}
	}

	out, code = run("./a", "./c")
	if code != 0 || !strings.Contains(out, "ok  \texample.com/m/a\t") || !strings.Contains(out, "3 tests skipped") {
		t.Errorf("passing run: exit %d\n%s", code, out)
	}
	out, code = run("-run", "TestQuiet", "./a")
	if code != 0 || !strings.HasSuffix(out, "\nNo test was skipped.\n") {
		t.Errorf("run without skips: exit %d\n%s", code, out)
	}
	// A package that does not build fails the run.
	os.WriteFile(filepath.Join(mod, "c", "c_test.go"), []byte("package c\nfunc broken( {}\n"), 0o644)
	if out, code = run("./c"); code == 0 || !strings.Contains(out, "FAIL\texample.com/m/c") {
		t.Errorf("build failure: exit %d\n%s", code, out)
	}
}
