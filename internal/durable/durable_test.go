package durable

import (
	"bytes"
	"errors"
	"io"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

func temp(t *testing.T, dir string) *os.File {
	t.Helper()
	f, err := os.CreateTemp(dir, ".out.partial-*")
	if err != nil {
		t.Fatal(err)
	}
	return f
}

func entries(t *testing.T, dir string) []string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range es {
		names = append(names, e.Name())
	}
	return names
}

// The file is flushed in the background while it grows, and Commit puts
// every byte under the final name, leaving nothing else behind.
func TestCommitFlushesAsItGrows(t *testing.T) {
	defer func(n int64) { syncEvery = n }(syncEvery)
	syncEvery = 64 << 10
	dir := t.TempDir()
	final := filepath.Join(dir, "out.csv")
	f := New(temp(t, dir), final)
	var want bytes.Buffer
	chunk := bytes.Repeat([]byte("0123456789abcdef"), 1<<10) // 16 KiB
	for i := range 64 {
		chunk[0] = byte(i)
		want.Write(chunk)
		if _, err := f.Write(chunk); err != nil {
			t.Fatal(err)
		}
		if i%4 == 3 {
			f.wait() // the flush the fourth chunk started
		}
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if f.syncs != 16 {
		t.Errorf("%d background flushes for 1 MiB written, want one every 64 KiB: 16", f.syncs)
	}
	got, err := os.ReadFile(final)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("final file has %d bytes, want the %d written", len(got), want.Len())
	}
	if names := entries(t, dir); len(names) != 1 || names[0] != "out.csv" {
		t.Errorf("directory holds %q, want only out.csv", names)
	}
}

// A small file is flushed once, by Commit.
func TestCommitSmall(t *testing.T) {
	dir := t.TempDir()
	final := filepath.Join(dir, "small.csv")
	f := New(temp(t, dir), final)
	if _, err := io.WriteString(f, "id\n1\n"); err != nil {
		t.Fatal(err)
	}
	if err := f.Commit(); err != nil {
		t.Fatal(err)
	}
	if f.syncs != 0 {
		t.Errorf("%d background flushes for 5 bytes", f.syncs)
	}
	if got, _ := os.ReadFile(final); string(got) != "id\n1\n" {
		t.Errorf("final file holds %q", got)
	}
}

// Abort leaves nothing behind, even with a flush running, and the final
// name is never created.
func TestAbort(t *testing.T) {
	defer func(n int64) { syncEvery = n }(syncEvery)
	syncEvery = 4 << 10
	dir := t.TempDir()
	f := New(temp(t, dir), filepath.Join(dir, "out.xlsx"))
	for range 16 {
		if _, err := f.Write(make([]byte, 4<<10)); err != nil {
			t.Fatal(err)
		}
	}
	f.Abort()
	if names := entries(t, dir); len(names) != 0 {
		t.Errorf("directory holds %q after Abort", names)
	}
}

// A file that cannot be flushed (here a pipe, which has no fsync) fails
// its writes and its Commit, and never appears under the final name.
func TestFlushFails(t *testing.T) {
	defer func(n int64) { syncEvery = n }(syncEvery)
	syncEvery = 1 << 10
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	go io.Copy(io.Discard, r)
	dir := t.TempDir()
	final := filepath.Join(dir, "out.csv")
	f := New(w, final)
	if _, err := f.Write(make([]byte, 1<<10)); err != nil { // starts a flush
		t.Fatal(err)
	}
	f.wait()
	if _, err := f.Write(make([]byte, 1<<10)); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("a write after a failed flush: %v, want EINVAL", err)
	}
	if err := f.Commit(); !errors.Is(err, syscall.EINVAL) {
		t.Errorf("Commit: %v, want EINVAL", err)
	}
	if _, err := os.Stat(final); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("final name exists after a failed flush: %v", err)
	}
}

// A rename that fails (the directory is gone) is Commit's error.
func TestCommitRenameFails(t *testing.T) {
	dir := t.TempDir()
	f := New(temp(t, dir), filepath.Join(dir, "gone", "out.csv"))
	io.WriteString(f, "x")
	if err := f.Commit(); err == nil {
		t.Fatal("Commit into a missing directory succeeded")
	}
	if names := entries(t, dir); len(names) != 0 {
		t.Errorf("directory holds %q after a failed Commit", names)
	}
}
