package storage_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"slices"
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
	run(t, st, func(t *testing.T) {
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
	t.Run("keys stay inside the directory", func(t *testing.T) {
		for _, k := range []string{"../x", "a/../../x", "/etc/passwd", "a//b", "a/", "", "a\\b", "x.tmp"} {
			if _, err := st.Create(context.Background(), k, ""); err == nil {
				t.Errorf("Create(%q) accepted", k)
			}
			if _, err := st.Open(context.Background(), k); err == nil || errors.Is(err, storage.ErrNotFound) {
				t.Errorf("Open(%q): %v", k, err)
			}
		}
	})
}

// TestS3 runs the suite against a real S3 server that checks signatures
// (versitygw).
func TestS3(t *testing.T) {
	srv := storagetest.Start(t, "results")
	st, err := storage.Open(context.Background(), srv.URL("results"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	run(t, st, func(*testing.T) {})

	t.Run("the server checks signatures", func(t *testing.T) {
		// Unsigned: refused.
		resp, err := http.Get(srv.Endpoint + "/results/results/1/1.bin")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusForbidden {
			t.Errorf("unsigned GET: %d, want 403", resp.StatusCode)
		}
		// Signed with a wrong secret: refused.
		t.Setenv("AWS_SECRET_ACCESS_KEY", "not-the-secret")
		bad, err := storage.Open(context.Background(), srv.URL("results"))
		if err != nil {
			t.Fatal(err)
		}
		if _, err := bad.Open(context.Background(), "results/1/1.bin"); err == nil || errors.Is(err, storage.ErrNotFound) {
			t.Errorf("open with a wrong secret: %v, want a refusal", err)
		}
	})

	t.Run("the server dies during an upload", func(t *testing.T) {
		ctx := context.Background()
		up, err := st.Create(ctx, "results/9/1.bin", "application/octet-stream")
		if err != nil {
			t.Fatal(err)
		}
		part := bytes.Repeat([]byte("x"), 6<<20) // more than a part: a multipart upload is open
		if _, err := up.Write(part); err != nil {
			t.Fatal(err)
		}
		srv.Kill()
		_, werr := up.Write(part)
		cerr := up.Commit()
		if werr == nil && cerr == nil {
			t.Fatal("an upload to a dead server committed")
		}
		t.Logf("write: %v; commit: %v", werr, cerr)
		srv.Restart()
		if _, err := st.Open(ctx, "results/9/1.bin"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("open after the failed upload: %v, want ErrNotFound", err)
		}
		// What the dead upload left open on the server is listed as
		// partial, and Discard removes it.
		partial := false
		for info, err := range st.List(ctx, "results/9/") {
			if err != nil {
				t.Fatal(err)
			}
			partial = partial || (info.Partial && info.Key == "results/9/1.bin")
		}
		if !partial {
			t.Error("the dead upload is not listed as partial")
		}
		if err := st.Discard(ctx, "results/9/1.bin"); err != nil {
			t.Fatal(err)
		}
		for info, err := range st.List(ctx, "results/9/") {
			if err != nil {
				t.Fatal(err)
			}
			t.Errorf("left after Discard: %+v", info)
		}
		// Once it is back, a new upload succeeds.
		up, err = st.Create(ctx, "results/9/2.bin", "application/octet-stream")
		if err != nil {
			t.Fatal(err)
		}
		up.Write(part)
		up.Write(part)
		if err := up.Commit(); err != nil {
			t.Fatal(err)
		}
		obj, err := st.Open(ctx, "results/9/2.bin")
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		if obj.Size() != 2*int64(len(part)) {
			t.Errorf("size %d", obj.Size())
		}
	})
}

// partials returns the keys of the unfinished uploads under prefix.
func partials(t *testing.T, st storage.Storage, prefix string) []string {
	t.Helper()
	var keys []string
	for info, err := range st.List(context.Background(), prefix) {
		if err != nil {
			t.Fatal(err)
		}
		if info.Partial {
			keys = append(keys, info.Key)
		}
	}
	return keys
}

// started waits until the upload under key shows in the storage as
// partial, so that the test shows it is removed.
func started(t *testing.T, st storage.Storage, key string) {
	t.Helper()
	for !slices.Contains(partials(t, st, key), key) {
		runtime.Gosched()
	}
}

func run(t *testing.T, st storage.Storage, nothingLeft func(t *testing.T)) {
	ctx := context.Background()
	// 20 MiB: more than two S3 parts (5 MiB), a multipart upload.
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
		// While it is written, it is listed as partial only.
		started(t, st, "results/1/1.bin")
		for info, err := range st.List(ctx, "results/1/") {
			if err != nil || !info.Partial {
				t.Fatalf("listed before commit: %+v, %v", info, err)
			}
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
		started(t, st, "aborted/1.bin")
		up.Abort()
		if _, err := st.Open(ctx, "aborted/1.bin"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("open after abort: %v, want ErrNotFound", err)
		}
		if err := up.Commit(); err == nil {
			t.Fatal("commit after abort succeeded")
		}
		if keys := partials(t, st, "aborted/"); len(keys) > 0 {
			t.Errorf("aborted uploads still listed: %v", keys)
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
		started(t, st, "aborted/2.bin")
		cancel()
		if err := up.Commit(); err == nil {
			t.Fatal("commit with a cancelled context succeeded")
		}
		if _, err := st.Open(ctx, "aborted/2.bin"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("open: %v, want ErrNotFound", err)
		}
		if keys := partials(t, st, "aborted/"); len(keys) > 0 {
			t.Errorf("aborted uploads still listed: %v", keys)
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
