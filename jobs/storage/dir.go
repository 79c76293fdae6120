package storage

import (
	"fmt"
	"os"
	"path/filepath"

	"gocloud.dev/blob/fileblob"
)

// Dir keeps results in a local directory. A result is written to a
// temporary file beside its final name (never in os.TempDir, which may be
// on another disk) and renamed into place when committed.
type Dir struct {
	bucket
	path string
}

var _ Storage = (*Dir)(nil)

// OpenDir opens (creating it if needed) a result directory.
func OpenDir(dir string) (*Dir, error) {
	if dir == "" {
		return nil, fmt.Errorf("storage: empty directory")
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	if err := os.MkdirAll(abs, 0o750); err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	b, err := fileblob.OpenBucket(abs, &fileblob.Options{NoTempDir: true, CreateDir: true})
	if err != nil {
		return nil, fmt.Errorf("storage: %w", err)
	}
	return &Dir{bucket: bucket{b: b}, path: abs}, nil
}

// Path returns the directory's absolute path.
func (d *Dir) Path() string { return d.path }
