// Package storage keeps the finished results of background exports: in a
// local directory (the default) or in S3-compatible object storage. Both go
// through gocloud.dev/blob, so disk and S3 share one code path; each has
// what only it needs (the directory's temporary files, S3's multipart
// uploads).
//
// A result becomes visible only when it is complete: [Upload.Commit]
// publishes it (fileblob renames its temporary file, S3 completes the
// upload), [Upload.Abort] leaves nothing behind under the key.
package storage

import (
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"strings"
	"time"

	"gocloud.dev/blob"
	"gocloud.dev/gcerrors"
)

// ErrNotFound is returned (wrapped) by Open for a key that holds no
// committed result.
var ErrNotFound = errors.New("no such result")

// Storage holds results under keys ("results/42/1.xlsx").
type Storage interface {
	// Create starts a result under key. Nothing is visible under key until
	// the Upload is committed.
	Create(ctx context.Context, key, contentType string) (*Upload, error)
	// Open opens a committed result for reading; the Object seeks (a
	// range read on S3), so it can be served with http.ServeContent.
	Open(ctx context.Context, key string) (Object, error)
	// Delete removes a result; deleting a missing key is not an error.
	Delete(ctx context.Context, key string) error
	// List yields the objects under prefix, committed or not (a
	// directory's temporary files are listed too, so that the retention
	// sweep can remove what a crashed writer left).
	List(ctx context.Context, prefix string) iter.Seq2[Info, error]
	// Close releases the storage.
	Close() error
}

// Object is a committed result opened for reading.
type Object interface {
	io.ReadSeekCloser
	Size() int64
	ModTime() time.Time
}

// Info describes one stored object.
type Info struct {
	Key     string
	Size    int64
	ModTime time.Time
}

// Open opens the storage named by rawURL:
//
//	file:///var/lib/exportd/results   a local directory (created if missing)
//	s3://bucket?endpoint=http://127.0.0.1:9000&region=us-east-1
//
// See [OpenDir] and [OpenS3] for their options.
func Open(ctx context.Context, rawURL string) (Storage, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return nil, fmt.Errorf("storage url: %w", err)
	}
	switch u.Scheme {
	case "file":
		return OpenDir(u.Path)
	case "s3":
		return OpenS3(ctx, u)
	case "":
		return OpenDir(rawURL)
	}
	return nil, fmt.Errorf("storage url %q: want file:///DIR or s3://BUCKET", redact(u))
}

func redact(u *url.URL) string {
	c := *u
	c.RawQuery = ""
	return c.Redacted()
}

// bucket is what both storages share: a blob.Bucket and the writer
// options that suit it.
type bucket struct {
	b    *blob.Bucket
	opts blob.WriterOptions
	// aborted, if set, is called after an upload under key was aborted,
	// with a fresh context (the upload's own may be cancelled).
	aborted func(ctx context.Context, key string)
}

func (s *bucket) Create(ctx context.Context, key, contentType string) (*Upload, error) {
	// The writer gets a context of the Upload's own: Abort cancels it,
	// which is how a blob writer is told to throw its bytes away rather
	// than commit them on Close.
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	opts := s.opts
	opts.ContentType = contentType
	w, err := s.b.NewWriter(wctx, key, &opts)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	u := &Upload{w: w, cancel: cancel, key: key, ctx: ctx}
	if s.aborted != nil {
		u.aborted = s.aborted
	}
	// The caller's context still ends the upload.
	u.stop = context.AfterFunc(ctx, cancel)
	return u, nil
}

func (s *bucket) Open(ctx context.Context, key string) (Object, error) {
	r, err := s.b.NewReader(ctx, key, nil)
	if err != nil {
		if gcerrors.Code(err) == gcerrors.NotFound {
			return nil, fmt.Errorf("open %s: %w", key, ErrNotFound)
		}
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	return r, nil
}

func (s *bucket) Delete(ctx context.Context, key string) error {
	err := s.b.Delete(ctx, key)
	if err != nil && gcerrors.Code(err) != gcerrors.NotFound {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

func (s *bucket) List(ctx context.Context, prefix string) iter.Seq2[Info, error] {
	return func(yield func(Info, error) bool) {
		it := s.b.List(&blob.ListOptions{Prefix: prefix})
		for {
			obj, err := it.Next(ctx)
			if err == io.EOF {
				return
			}
			if err != nil {
				yield(Info{}, fmt.Errorf("list %s: %w", prefix, err))
				return
			}
			if obj.IsDir || strings.HasSuffix(obj.Key, "/") {
				continue
			}
			if !yield(Info{Key: obj.Key, Size: obj.Size, ModTime: obj.ModTime}, nil) {
				return
			}
		}
	}
}

func (s *bucket) Close() error { return s.b.Close() }

// Upload is a result being written. Exactly one of Commit and Abort ends
// it (a second call does nothing).
type Upload struct {
	w       *blob.Writer
	key     string
	ctx     context.Context // the caller's
	cancel  context.CancelFunc
	stop    func() bool
	aborted func(ctx context.Context, key string)
	done    bool
}

// Write writes to the result.
func (u *Upload) Write(p []byte) (int, error) { return u.w.Write(p) }

// Key returns the key the result is written under.
func (u *Upload) Key() string { return u.key }

// Commit makes the result visible under its key. If it fails, nothing is
// visible and the upload is aborted.
func (u *Upload) Commit() error {
	if u.done {
		return errors.New("upload already ended")
	}
	if err := u.ctx.Err(); err != nil {
		u.Abort()
		return fmt.Errorf("commit %s: %w", u.key, err)
	}
	u.done = true
	u.stop()
	err := u.w.Close()
	u.cancel()
	if err != nil {
		u.cleanup()
		return fmt.Errorf("commit %s: %w", u.key, err)
	}
	return nil
}

// Abort throws the upload away: nothing becomes visible under its key.
func (u *Upload) Abort() {
	if u.done {
		return
	}
	u.done = true
	u.stop()
	u.cancel()
	u.w.Close() // with its context cancelled, the writer discards
	u.cleanup()
}

func (u *Upload) cleanup() {
	if u.aborted == nil {
		return
	}
	// A fresh context: the upload's own is cancelled by now, and an abort
	// sent with it never leaves.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u.aborted(ctx, u.key)
}
