package storage

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"iter"
	"net/url"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// S3 keeps results in an S3-compatible bucket. A result is uploaded in
// parts as it is written (a small one in one PUT at Commit); the object
// appears only when the upload completes. An aborted upload is cleaned up
// with a context of its own, so that its parts do not stay on the server,
// billed, until a lifecycle rule removes them.
type S3 struct {
	client *s3.Client
	name   string
	opts   S3Options
}

var _ Storage = (*S3)(nil)

// S3Options configure [NewS3].
type S3Options struct {
	// PartSize is the size of each uploaded part; 0 means 5 MiB (S3's
	// minimum). Memory per upload is about PartSize × (Concurrency+1).
	PartSize int
	// Concurrency is the number of parts uploaded at once; 0 means 1.
	Concurrency int
	// ChecksumWhenRequired sends request checksums only where S3 requires
	// them, for S3-compatible servers that reject the SDK's default
	// checksums.
	ChecksumWhenRequired bool
}

// OpenS3 opens the bucket of an s3:// URL. Credentials and the region
// come from the usual AWS sources (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_REGION, shared config files, instance roles). Query options:
//
//	endpoint=URL       an S3-compatible server (Versity's gateway, Ceph, …);
//	                   path-style addressing is then used
//	region=NAME        overrides the configured region (default us-east-1)
//	path_style=false   virtual-host addressing with an endpoint
//	part_size=BYTES    upload part size (default 5 MiB)
//	concurrency=N      parts in flight (default 1)
//	checksum=when_required
func OpenS3(ctx context.Context, u *url.URL) (*S3, error) {
	q := u.Query()
	cfg, err := awsconfig.LoadDefaultConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("storage: aws config: %w", err)
	}
	if r := q.Get("region"); r != "" {
		cfg.Region = r
	}
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	endpoint := q.Get("endpoint")
	pathStyle := endpoint != "" && q.Get("path_style") != "false"
	var opts S3Options
	if v := q.Get("part_size"); v != "" {
		if opts.PartSize, err = strconv.Atoi(v); err != nil {
			return nil, fmt.Errorf("storage: part_size: %w", err)
		}
	}
	if v := q.Get("concurrency"); v != "" {
		if opts.Concurrency, err = strconv.Atoi(v); err != nil {
			return nil, fmt.Errorf("storage: concurrency: %w", err)
		}
	}
	opts.ChecksumWhenRequired = q.Get("checksum") == "when_required"
	client := s3.NewFromConfig(cfg, func(o *s3.Options) {
		o.UsePathStyle = pathStyle
		// A range read has no whole-object checksum to check; the SDK
		// would log that at every download.
		o.DisableLogOutputChecksumValidationSkipped = true
		if endpoint != "" {
			o.BaseEndpoint = aws.String(endpoint)
		}
		if opts.ChecksumWhenRequired {
			o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
			o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		}
	})
	return NewS3(ctx, client, u.Host, opts)
}

// NewS3 returns the storage of bucket name through client.
func NewS3(_ context.Context, client *s3.Client, name string, opts S3Options) (*S3, error) {
	if name == "" {
		return nil, errors.New("storage: s3: no bucket name")
	}
	if opts.PartSize <= 0 {
		opts.PartSize = 5 << 20
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	return &S3{client: client, name: name, opts: opts}, nil
}

// notFound reports whether err is S3's answer for a missing key.
func notFound(err error) bool {
	var nf *types.NotFound
	var nk *types.NoSuchKey
	var re *awshttp.ResponseError
	return errors.As(err, &nf) || errors.As(err, &nk) || (errors.As(err, &re) && re.HTTPStatusCode() == 404)
}

// Create implements Storage.
func (s *S3) Create(ctx context.Context, key, contentType string) (*Upload, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	return newUpload(ctx, key, func(wctx context.Context) (writer, error) {
		return &s3Writer{s: s, key: key, contentType: contentType, ctx: wctx,
			sem: make(chan struct{}, s.opts.Concurrency)}, nil
	})
}

// s3Writer buffers a part and uploads it when full; up to Concurrency
// parts are in flight.
type s3Writer struct {
	s           *S3
	key         string
	contentType string
	ctx         context.Context
	buf         []byte
	uploadID    *string
	next        int32 // the next part's number
	sem         chan struct{}
	wg          sync.WaitGroup
	mu          sync.Mutex // guards parts and err
	parts       []types.CompletedPart
	err         error
}

func (w *s3Writer) failed() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}

func (w *s3Writer) Write(p []byte) (int, error) {
	if err := w.failed(); err != nil {
		return 0, err
	}
	n := len(p)
	for len(p) > 0 {
		if w.buf == nil {
			w.buf = make([]byte, 0, w.s.opts.PartSize)
		}
		k := min(len(p), w.s.opts.PartSize-len(w.buf))
		w.buf = append(w.buf, p[:k]...)
		p = p[k:]
		if len(w.buf) == w.s.opts.PartSize {
			if err := w.sendPart(); err != nil {
				return n - len(p), err
			}
		}
	}
	return n, nil
}

// sendPart uploads the buffer as the next part (starting the multipart
// upload first), in the background when Concurrency allows.
func (w *s3Writer) sendPart() error {
	if w.uploadID == nil {
		out, err := w.s.client.CreateMultipartUpload(w.ctx, &s3.CreateMultipartUploadInput{
			Bucket: &w.s.name, Key: &w.key, ContentType: nonEmpty(w.contentType)})
		if err != nil {
			return fmt.Errorf("start upload: %w", err)
		}
		w.uploadID = out.UploadId
	}
	w.next++
	num, part := w.next, w.buf
	w.buf = nil
	select {
	case w.sem <- struct{}{}:
	case <-w.ctx.Done():
		return w.ctx.Err()
	}
	w.wg.Go(func() {
		defer func() { <-w.sem }()
		out, err := w.s.client.UploadPart(w.ctx, &s3.UploadPartInput{Bucket: &w.s.name, Key: &w.key,
			UploadId: w.uploadID, PartNumber: aws.Int32(num), Body: bytes.NewReader(part)})
		w.mu.Lock()
		defer w.mu.Unlock()
		if err != nil {
			if w.err == nil {
				w.err = fmt.Errorf("upload part %d: %w", num, err)
			}
			return
		}
		// The part's checksum is checked as it is uploaded; the upload
		// was started without a checksum algorithm, so the completion
		// names parts by ETag only (a server refuses checksums there).
		w.parts = append(w.parts, types.CompletedPart{PartNumber: aws.Int32(num), ETag: out.ETag})
	})
	return w.failed()
}

func (w *s3Writer) commit(ctx context.Context) error {
	if w.uploadID == nil {
		// Smaller than a part: one PUT.
		_, err := w.s.client.PutObject(ctx, &s3.PutObjectInput{Bucket: &w.s.name, Key: &w.key,
			ContentType: nonEmpty(w.contentType), Body: bytes.NewReader(w.buf), ContentLength: aws.Int64(int64(len(w.buf)))})
		return err
	}
	if len(w.buf) > 0 {
		if err := w.sendPart(); err != nil {
			return err
		}
	}
	w.wg.Wait()
	if err := w.failed(); err != nil {
		return err
	}
	slices.SortFunc(w.parts, func(a, b types.CompletedPart) int { return int(*a.PartNumber - *b.PartNumber) })
	_, err := w.s.client.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &w.s.name, Key: &w.key,
		UploadId: w.uploadID, MultipartUpload: &types.CompletedMultipartUpload{Parts: w.parts}})
	if err != nil {
		return fmt.Errorf("complete upload: %w", err)
	}
	return nil
}

func (w *s3Writer) abort(ctx context.Context) {
	w.wg.Wait() // the upload's context is cancelled: the parts in flight end
	if w.uploadID != nil {
		w.s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &w.s.name, Key: &w.key, UploadId: w.uploadID})
	}
}

func nonEmpty(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// Open implements Storage.
func (s *S3) Open(ctx context.Context, key string) (Object, error) {
	if err := checkKey(key); err != nil {
		return nil, err
	}
	h, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &s.name, Key: &key})
	if notFound(err) {
		return nil, fmt.Errorf("open %s: %w", key, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", key, err)
	}
	return &s3Object{s: s, key: key, ctx: ctx, size: aws.ToInt64(h.ContentLength), mod: aws.ToTime(h.LastModified), etag: h.ETag}, nil
}

// s3Object reads an object from its current offset with a range GET,
// opened at the first Read after a Seek.
type s3Object struct {
	s    *S3
	key  string
	ctx  context.Context
	size int64
	mod  time.Time
	etag *string
	off  int64
	body io.ReadCloser
}

func (o *s3Object) Size() int64        { return o.size }
func (o *s3Object) ModTime() time.Time { return o.mod }

func (o *s3Object) Read(p []byte) (int, error) {
	if o.off >= o.size {
		return 0, io.EOF
	}
	if o.body == nil {
		out, err := o.s.client.GetObject(o.ctx, &s3.GetObjectInput{Bucket: &o.s.name, Key: &o.key,
			Range: aws.String(fmt.Sprintf("bytes=%d-", o.off)), IfMatch: o.etag})
		if err != nil {
			return 0, fmt.Errorf("read %s: %w", o.key, err)
		}
		o.body = out.Body
	}
	n, err := o.body.Read(p)
	o.off += int64(n)
	if err == io.EOF && o.off < o.size {
		err = fmt.Errorf("read %s: %w", o.key, io.ErrUnexpectedEOF)
	}
	return n, err
}

func (o *s3Object) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = o.off + offset
	case io.SeekEnd:
		abs = o.size + offset
	default:
		return o.off, fmt.Errorf("seek %s: bad whence %d", o.key, whence)
	}
	if abs < 0 {
		return o.off, fmt.Errorf("seek %s: negative position", o.key)
	}
	if abs != o.off && o.body != nil {
		o.body.Close()
		o.body = nil
	}
	o.off = abs
	return abs, nil
}

func (o *s3Object) Close() error {
	if o.body != nil {
		o.body.Close()
		o.body = nil
	}
	return nil
}

// Delete implements Storage.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	if _, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &s.name, Key: &key}); err != nil && !notFound(err) {
		return fmt.Errorf("delete %s: %w", key, err)
	}
	return nil
}

// List implements Storage: the objects in key order, then the multipart
// uploads not completed nor aborted.
func (s *S3) List(ctx context.Context, prefix string) iter.Seq2[Info, error] {
	return func(yield func(Info, error) bool) {
		objects := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{Bucket: &s.name, Prefix: &prefix})
		for objects.HasMorePages() {
			page, err := objects.NextPage(ctx)
			if err != nil {
				yield(Info{}, fmt.Errorf("list %s: %w", prefix, err))
				return
			}
			for _, obj := range page.Contents {
				if !yield(Info{Key: aws.ToString(obj.Key), Size: aws.ToInt64(obj.Size), ModTime: aws.ToTime(obj.LastModified)}, nil) {
					return
				}
			}
		}
		for up, err := range s.uploads(ctx, prefix) {
			if err != nil {
				yield(Info{}, err)
				return
			}
			if !yield(Info{Key: aws.ToString(up.Key), ModTime: aws.ToTime(up.Initiated), Partial: true}, nil) {
				return
			}
		}
	}
}

// uploads yields the open multipart uploads under prefix.
func (s *S3) uploads(ctx context.Context, prefix string) iter.Seq2[types.MultipartUpload, error] {
	return func(yield func(types.MultipartUpload, error) bool) {
		in := &s3.ListMultipartUploadsInput{Bucket: &s.name, Prefix: &prefix}
		for {
			out, err := s.client.ListMultipartUploads(ctx, in)
			if err != nil {
				yield(types.MultipartUpload{}, fmt.Errorf("list uploads %s: %w", prefix, err))
				return
			}
			for _, up := range out.Uploads {
				if !yield(up, nil) {
					return
				}
			}
			if !aws.ToBool(out.IsTruncated) {
				return
			}
			in.KeyMarker, in.UploadIdMarker = out.NextKeyMarker, out.NextUploadIdMarker
		}
	}
}

// Discard implements Storage: it aborts key's open multipart uploads.
func (s *S3) Discard(ctx context.Context, key string) error {
	if err := checkKey(key); err != nil {
		return err
	}
	var errs []error
	for up, err := range s.uploads(ctx, key) {
		if err != nil {
			return fmt.Errorf("discard %s: %w", key, err)
		}
		if aws.ToString(up.Key) != key {
			continue
		}
		if _, err := s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.name, Key: up.Key, UploadId: up.UploadId}); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("discard %s: %w", key, err)
	}
	return nil
}

// Close implements Storage.
func (s *S3) Close() error { return nil }
