package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/exportd/exportd/jobs/storage"
	"github.com/exportd/exportd/jobs/storage/storagetest"
)

// Every storage passes the same suite.
func TestDir(t *testing.T) {
	dir := t.TempDir()
	st, err := storage.Open(context.Background(), "file://"+dir)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run(t, st, func(*testing.T, string) {}, func(t *testing.T) {
		// Nothing of an aborted upload is left in the directory.
		var left []string
		filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
			if err == nil && !d.IsDir() && strings.Contains(p, "aborted") {
				left = append(left, p)
			}
			return nil
		})
		if len(left) > 0 {
			t.Errorf("aborted uploads left files: %v", left)
		}
	})
}

func TestS3(t *testing.T) {
	u, _ := storagetest.S3(t, "results")
	st, err := storage.Open(context.Background(), u)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	s3st := st.(*storage.S3)
	// Before an abort, wait until the multipart upload exists on the
	// server, so that the test shows it is aborted (the SDK's own abort
	// runs with the cancelled context and leaves it there).
	started := func(t *testing.T, key string) {
		for {
			keys, err := s3st.PendingUploads(context.Background(), key)
			if err != nil {
				t.Fatal(err)
			}
			if len(keys) > 0 {
				return
			}
			runtime.Gosched()
		}
	}
	run(t, st, started, func(t *testing.T) {
		keys, err := s3st.PendingUploads(context.Background(), "aborted")
		if err != nil {
			t.Fatal(err)
		}
		if len(keys) > 0 {
			t.Errorf("aborted multipart uploads left on the server: %v", keys)
		}
	})
}

func run(t *testing.T, st storage.Storage, started func(t *testing.T, key string), nothingLeft func(t *testing.T)) {
	ctx := context.Background()
	// 20 MiB: more than two S3 parts (8 MiB at least), a multipart upload.
	data := make([]byte, 20<<20+12345)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.IntN(256))
	}

	t.Run("visible only when committed", func(t *testing.T) {
		up, err := st.Create(ctx, "results/1/1.bin", "application/octet-stream")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Write(data[:8<<20]); err != nil {
			t.Fatal(err)
		}
		if _, err := st.Open(ctx, "results/1/1.bin"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("open before commit: %v, want ErrNotFound", err)
		}
		if _, err := up.Write(data[8<<20:]); err != nil {
			t.Fatal(err)
		}
		if err := up.Commit(); err != nil {
			t.Fatal(err)
		}
		obj, err := st.Open(ctx, "results/1/1.bin")
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		if obj.Size() != int64(len(data)) {
			t.Fatalf("size %d, want %d", obj.Size(), len(data))
		}
		if obj.ModTime().IsZero() {
			t.Error("no modification time")
		}
		got, err := io.ReadAll(obj)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("read back %d bytes (%v), differ from the %d written", len(got), err, len(data))
		}
		// Seeking reads ranges.
		for _, off := range []int64{0, 1, 5 << 20, int64(len(data)) - 10} {
			if _, err := obj.Seek(off, io.SeekStart); err != nil {
				t.Fatal(err)
			}
			buf := make([]byte, 10)
			if _, err := io.ReadFull(obj, buf); err != nil {
				t.Fatalf("read at %d: %v", off, err)
			}
			if !bytes.Equal(buf, data[off:off+10]) {
				t.Fatalf("bytes at %d differ", off)
			}
		}
		if n, _ := obj.Seek(0, io.SeekEnd); n != int64(len(data)) {
			t.Fatalf("seek end = %d", n)
		}
	})

	t.Run("abort leaves nothing", func(t *testing.T) {
		up, err := st.Create(ctx, "aborted/1.bin", "application/octet-stream")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Write(data); err != nil {
			t.Fatal(err)
		}
		started(t, "aborted/1.bin")
		up.Abort()
		if _, err := st.Open(ctx, "aborted/1.bin"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("open after abort: %v, want ErrNotFound", err)
		}
		if err := up.Commit(); err == nil {
			t.Fatal("commit after abort succeeded")
		}
		nothingLeft(t)
	})

	t.Run("cancelled context aborts", func(t *testing.T) {
		cctx, cancel := context.WithCancel(ctx)
		up, err := st.Create(cctx, "aborted/2.bin", "application/octet-stream")
		if err != nil {
			t.Fatal(err)
		}
		if _, err := up.Write(data[:18<<20]); err != nil {
			t.Fatal(err)
		}
		started(t, "aborted/2.bin")
		cancel()
		if err := up.Commit(); err == nil {
			t.Fatal("commit with a cancelled context succeeded")
		}
		if _, err := st.Open(ctx, "aborted/2.bin"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("open: %v, want ErrNotFound", err)
		}
		nothingLeft(t)
	})

	t.Run("list and delete", func(t *testing.T) {
		for _, k := range []string{"results/2/1.csv", "results/3/1.csv"} {
			up, err := st.Create(ctx, k, "text/csv")
			if err != nil {
				t.Fatal(err)
			}
			up.Write([]byte("a,b\n"))
			if err := up.Commit(); err != nil {
				t.Fatal(err)
			}
		}
		var keys []string
		for info, err := range st.List(ctx, "results/") {
			if err != nil {
				t.Fatal(err)
			}
			keys = append(keys, info.Key)
		}
		if strings.Join(keys, " ") != "results/1/1.bin results/2/1.csv results/3/1.csv" {
			t.Fatalf("list: %q", keys)
		}
		if err := st.Delete(ctx, "results/2/1.csv"); err != nil {
			t.Fatal(err)
		}
		if err := st.Delete(ctx, "results/2/1.csv"); err != nil {
			t.Fatalf("deleting a missing key: %v", err)
		}
		if _, err := st.Open(ctx, "results/2/1.csv"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("open after delete: %v", err)
		}
	})
}
