package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// A `go build` in a git checkout records the revision and its time, and
// `exportd version` shows them with the module version and the Go
// version. The checkout is made for the test: this working tree's files
// (committed or not) in a new repository with one commit of a known time.
// (The toolchain finds a repository only by a .git directory: a build in a
// linked worktree, where .git is a file, records no revision.)
func TestVersionShowsRevision(t *testing.T) {
	if testing.Short() {
		t.Skip("builds exportd in a new directory (a minute or two): not in -short")
	}
	if _, err := exec.LookPath("git"); err != nil {
		need(t, "git: %v", err)
	}
	src := t.TempDir()
	git := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=exportd test", "GIT_AUTHOR_EMAIL=test@example.com",
			"GIT_COMMITTER_NAME=exportd test", "GIT_COMMITTER_EMAIL=test@example.com",
			"GIT_AUTHOR_DATE=2026-01-02T03:04:05Z", "GIT_COMMITTER_DATE=2026-01-02T03:04:05Z")
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("git %s: %v", strings.Join(args, " "), err)
		}
		return strings.TrimSpace(string(out))
	}
	copyModule(t, "../..", src)
	git("init", "-q")
	git("add", "-A")
	git("commit", "-q", "--no-gpg-sign", "-m", "the tree under test")
	rev := git("rev-parse", "HEAD")

	bin := filepath.Join(t.TempDir(), "exportd")
	// -buildvcs=true wins over a GOFLAGS=-buildvcs=false set with go env -w.
	build := func() {
		t.Helper()
		cmd := exec.Command("go", "build", "-buildvcs=true", "-o", bin, "./cmd/exportd")
		cmd.Dir = src
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("go build: %v\n%s", err, out)
		}
	}
	build()
	out, err := exec.Command(bin, "version").CombinedOutput()
	if err != nil {
		t.Fatalf("version: %v: %s", err, out)
	}
	want := "exportd v0.0.0-20260102030405-" + rev[:12] + "\n" + // the pseudo-version of the commit
		"  revision " + rev + "\n" +
		"  time     2026-01-02T03:04:05Z\n" +
		"  go       " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH + "\n"
	if string(out) != want {
		t.Errorf("exportd version:\n%s\nwant\n%s", out, want)
	}

	// A change not committed is flagged.
	if err := os.WriteFile(filepath.Join(src, "README.md"), []byte("changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	build()
	if out, _ := exec.Command(bin, "version").CombinedOutput(); !bytes.Contains(out, []byte("+dirty\n")) ||
		!bytes.Contains(out, []byte("  revision "+rev+" (modified: built with uncommitted changes)\n")) {
		t.Errorf("exportd version after a change:\n%s", out)
	}
}

// copyModule copies the module's source files (those git tracks or would
// track) from dir to dst.
func copyModule(t *testing.T, dir, dst string) {
	t.Helper()
	cmd := exec.Command("git", "ls-files", "-z", "--cached", "--others", "--exclude-standard")
	cmd.Dir = dir
	list, err := cmd.Output()
	if err != nil {
		need(t, "%s is not a git checkout: %v", dir, err)
	}
	for name := range strings.SplitSeq(strings.TrimSuffix(string(list), "\x00"), "\x00") {
		b, err := os.ReadFile(filepath.Join(dir, name))
		if os.IsNotExist(err) {
			continue // deleted, not yet committed
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Join(dst, filepath.Dir(name)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dst, name), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// need skips t when something the test needs is missing, or fails it when
// EXPORTD_REQUIRE_INTEGRATION=1 (as in CI).
func need(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("EXPORTD_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf(format+" (EXPORTD_REQUIRE_INTEGRATION=1)", args...)
	}
	t.Skipf(format, args...)
}
