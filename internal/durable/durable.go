// Package durable writes a file that is, after a crash, either on disk
// whole under its final name or not there at all. The file is written under
// a temporary name beside its final one, flushed to disk while it grows, and
// renamed into place by Commit once all of it is on disk.
//
// Flushing while the file grows is what makes Commit quick: on a disk that
// takes about a millisecond to flush each megabyte, a single fsync of a
// 100 MB export at the end kept the export waiting for ~90 ms; with the data
// flushed in the background as it is written, the final fsync has only the
// last few megabytes left.
package durable

import (
	"fmt"
	"os"
	"path/filepath"
)

// syncEvery is how many bytes are written between the background flushes.
var syncEvery int64 = 16 << 20

// File is a file being written under a temporary name. Commit puts it in
// place under its final name; Abort removes it. A File is used by one
// goroutine at a time.
type File struct {
	f       *os.File
	final   string
	written int64 // bytes written so far
	synced  int64 // bytes written when the last background flush began
	syncs   int   // background flushes started

	// flushing holds a token while a background flush runs; whoever puts
	// the token in may read syncErr, which the flush sets before taking
	// its token out.
	flushing chan struct{}
	syncErr  error
}

// New starts a durable file: tmp is the open temporary file, in the same
// directory as final (a rename across file systems is not atomic), and
// final the name Commit gives it.
func New(tmp *os.File, final string) *File {
	return &File{f: tmp, final: final, flushing: make(chan struct{}, 1)}
}

// Name returns the temporary file's name.
func (f *File) Name() string { return f.f.Name() }

// Write writes to the temporary file. Once syncEvery bytes have been
// written since the last flush began, it starts the next in the background
// (unless one is still running). A flush that failed fails the next Write.
func (f *File) Write(p []byte) (int, error) {
	n, err := f.f.Write(p)
	f.written += int64(n)
	if err != nil || f.written-f.synced < syncEvery {
		return n, err
	}
	select {
	case f.flushing <- struct{}{}:
	default:
		return n, nil // the last flush is still running
	}
	if f.syncErr != nil {
		<-f.flushing
		return n, fmt.Errorf("flush %s: %w", f.f.Name(), f.syncErr)
	}
	f.synced = f.written
	f.syncs++
	go func() {
		f.syncErr = f.f.Sync()
		<-f.flushing
	}()
	return n, nil
}

// wait waits for a background flush and returns its error.
func (f *File) wait() error {
	f.flushing <- struct{}{}
	err := f.syncErr
	<-f.flushing
	return err
}

// Commit flushes what is left to disk, closes the file and renames it to
// its final name, then flushes the directory so that the rename survives a
// crash too. The temporary file is removed if any step fails.
func (f *File) Commit() error {
	err := f.wait()
	if err == nil {
		err = f.f.Sync()
	}
	if cerr := f.f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.f.Name(), f.final)
	}
	if err != nil {
		os.Remove(f.f.Name())
		return fmt.Errorf("write %s: %w", f.final, err)
	}
	// Best effort: some file systems cannot flush a directory, and the
	// file itself is whole on disk either way.
	if dir, err := os.Open(filepath.Dir(f.final)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return nil
}

// Abort closes and removes the temporary file.
func (f *File) Abort() {
	f.wait()
	f.f.Close()
	os.Remove(f.f.Name())
}
