package storage

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"iter"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/exportd/exportd/internal/durable"
)

// tmpSuffix ends the name of a result being written: KEY.RANDOM.tmp,
// beside its final name.
const tmpSuffix = ".tmp"

// Dir keeps results in a local directory. A result is written to a
// temporary file beside its final name (never in os.TempDir, which may be
// on another disk), synced and renamed into place when committed.
type Dir struct {
	path string
}

var _ Storage = (*Dir)(nil)

// OpenDir opens (creating it if needed) a result directory.
func OpenDir(dir string) (*Dir, error) {
	if dir == "" {
		return nil, errors.New("storage: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return &Dir{path: abs}, nil
}

// Path returns the directory's absolute path.
func (d *Dir) Path() string { return d.path }

func (d *Dir) file(key string) string { return filepath.Join(d.path, filepath.FromSlash(key)) }

// Create implements Storage.
func (d *Dir) Create(ctx context.Context, key, _ string) (*Upload, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return newUpload(ctx, key, func(context.Context) (writer, error) {
		final := d.file(key)
		if err := os.MkdirAll(filepath.Dir(final), 0o750); err != nil {
			return nil, err
		}
		b := make([]byte, 8)
		rand.Read(b)
		f, err := os.OpenFile(final+"."+hex.EncodeToString(b)+tmpSuffix, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o640)
		if err != nil {
			return nil, err
		}
		return &dirWriter{f: durable.New(f, final)}, nil
	})
}

// dirWriter writes a result through a durable file: flushed to disk as it
// grows, renamed into place when committed.
type dirWriter struct{ f *durable.File }

func (w *dirWriter) Write(p []byte) (int, error) { return w.f.Write(p) }

// commit fails when the temporary file is gone: a Discard (its writer was
// taken for dead) removes it, and then the result is not published.
func (w *dirWriter) commit(context.Context) error { return w.f.Commit() }

func (w *dirWriter) abort(context.Context) { w.f.Abort() }

// Open implements Storage.
func (d *Dir) Open(_ context.Context, key string) (Object, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	f, err := os.Open(d.file(key))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("open %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	st, err := f.Stat()
	if err != nil || !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("open %s: %w", key, ErrNotFound)
	}
	return &dirObject{File: f, st: st}, nil
}

type dirObject struct {
	*os.File
	st fs.FileInfo
}

func (o *dirObject) Size() int64        { return o.st.Size() }
func (o *dirObject) ModTime() time.Time { return o.st.ModTime() }

// Delete implements Storage.
func (d *Dir) Delete(_ context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if err := os.Remove(d.file(key)); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// partialKey returns the key a temporary file name belongs to.
func partialKey(name string) (string, bool) {
	base, ok := strings.CutSuffix(name, tmpSuffix)
	if !ok {
		return "", false
	}
	i := strings.LastIndexByte(base, '.')
	if i < 0 {
		return "", false
	}
	return base[:i], true
}

// List implements Storage: files in key order, a temporary file under
// the key it was writing.
func (d *Dir) List(ctx context.Context, prefix string) iter.Seq2[Info, error] {
	return func(yield func(Info, error) bool) {
		// Walk only the directory the prefix is in.
		start := d.path
		if i := strings.LastIndexByte(prefix, '/'); i > 0 {
			start = d.file(prefix[:i])
		}
		err := filepath.WalkDir(start, func(p string, e fs.DirEntry, err error) error {
			if err != nil {
				if errors.Is(err, fs.ErrNotExist) {
					return nil
				}
				return err
			}
			if err := ctx.Err(); err != nil {
				return err
			}
			if e.IsDir() || !e.Type().IsRegular() {
				return nil
			}
			rel, err := filepath.Rel(d.path, p)
			if err != nil {
				return err
			}
			key := filepath.ToSlash(rel)
			info := Info{Key: key}
			if k, ok := partialKey(key); ok {
				info.Key, info.Partial = k, true
			}
			if !strings.HasPrefix(info.Key, prefix) {
				return nil
			}
			st, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				return nil // renamed or removed meanwhile
			}
			if err != nil {
				return err
			}
			info.Size, info.ModTime = st.Size(), st.ModTime()
			if !yield(info, nil) {
				return fs.SkipAll
			}
			return nil
		})
		if err != nil {
			yield(Info{}, fmt.Errorf("list %s: %w", prefix, err))
		}
	}
}

// Discard implements Storage: it removes key's temporary files.
func (d *Dir) Discard(_ context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	final := d.file(key)
	ents, err := os.ReadDir(filepath.Dir(final))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("discard %s: %w", key, err)
	}
	var errs []error
	for _, e := range ents {
		if k, ok := partialKey(e.Name()); ok && k == path.Base(key) {
			if err := os.Remove(filepath.Join(filepath.Dir(final), e.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("discard %s: %w", key, err)
	}
	return nil
}

// Close implements Storage.
func (d *Dir) Close() error { return nil }
