// Package storage keeps the finished results of background exports: in a
// local directory (the default) or in S3-compatible object storage (on the
// AWS SDK). Both implement one interface with the same promise: a result
// becomes visible only when it is complete. [Upload.Commit] publishes it
// (the directory renames its temporary file, S3 completes the upload);
// [Upload.Abort] leaves nothing behind under the key.
//
// What a writer that died (kill -9, a lost node) left unfinished — a
// directory's temporary file, an S3 multipart upload — is listed by
// List as a partial Info and removed by Discard.
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
	// Delete removes a committed result; deleting a missing key is not an
	// error.
	Delete(ctx context.Context, key string) error
	// List yields the committed results under prefix, and the unfinished
	// uploads (Info.Partial) that writers which never ended left there.
	List(ctx context.Context, prefix string) iter.Seq2[Info, error]
	// Discard removes every unfinished upload under key (a crashed
	// writer's temporary file, an open S3 multipart upload); a writer
	// still running under key then fails to commit. A committed result is
	// left alone.
	Discard(ctx context.Context, key string) error
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
	ModTime time.Time // for a partial upload: when it was last written (directory) or started (S3)
	// Partial marks an upload that was never committed nor aborted.
	Partial bool
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

// checkKey refuses keys that could leave the storage's root or be taken
// for a temporary file.
func checkKey(key string) error {
	if key == "" || strings.HasPrefix(key, "/") || strings.HasSuffix(key, "/") || strings.Contains(key, "\\") ||
		strings.HasSuffix(key, tmpSuffix) {
		return fmt.Errorf("storage: bad key %q", key)
	}
	for _, seg := range strings.Split(key, "/") {
		if seg == "" || seg == "." || seg == ".." {
			return fmt.Errorf("storage: bad key %q", key)
		}
	}
	return nil
}

// writer is what a storage writes an upload through.
type writer interface {
	io.Writer
	// commit publishes what was written; on error nothing is visible.
	commit(ctx context.Context) error
	// abort throws it away; ctx is fresh (the upload's own may have
	// ended).
	abort(ctx context.Context)
}

// Upload is a result being written. Exactly one of Commit and Abort ends
// it (a second call does nothing). Its methods are for one goroutine.
type Upload struct {
	w      writer
	key    string
	ctx    context.Context // the caller's
	wctx   context.Context // the writer's: ends with the caller's, or on Abort
	cancel context.CancelFunc
	stop   func() bool
	done   bool
}

// newUpload wraps w, whose requests use the returned upload's wctx.
func newUpload(ctx context.Context, key string, mk func(wctx context.Context) (writer, error)) (*Upload, error) {
	wctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	w, err := mk(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("create %s: %w", key, err)
	}
	u := &Upload{w: w, key: key, ctx: ctx, wctx: wctx, cancel: cancel}
	// The caller's context still ends the upload's requests.
	u.stop = context.AfterFunc(ctx, cancel)
	return u, nil
}

// Write writes to the result.
func (u *Upload) Write(p []byte) (int, error) {
	if u.done {
		return 0, fmt.Errorf("write %s: upload already ended", u.key)
	}
	n, err := u.w.Write(p)
	if err != nil {
		return n, fmt.Errorf("write %s: %w", u.key, err)
	}
	return n, nil
}

// Key returns the key the result is written under.
func (u *Upload) Key() string { return u.key }

// Commit makes the result visible under its key. If it fails, nothing is
// visible and the upload is aborted.
func (u *Upload) Commit() error {
	if u.done {
		return fmt.Errorf("commit %s: upload already ended", u.key)
	}
	if err := u.ctx.Err(); err != nil {
		u.Abort()
		return fmt.Errorf("commit %s: %w", u.key, err)
	}
	err := u.w.commit(u.wctx)
	if err != nil {
		u.Abort()
		return fmt.Errorf("commit %s: %w", u.key, err)
	}
	u.done = true
	u.stop()
	u.cancel()
	return nil
}

// Abort throws the upload away: nothing becomes visible under its key.
func (u *Upload) Abort() {
	if u.done {
		return
	}
	u.done = true
	u.stop()
	u.cancel() // in-flight requests end
	// A fresh context: the upload's own is cancelled by now, and a
	// clean-up sent with it never leaves.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	u.w.abort(ctx)
}
