package storage

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strconv"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsconfig "github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"gocloud.dev/blob"
	"gocloud.dev/blob/s3blob"
)

// S3 keeps results in an S3-compatible bucket. Results are uploaded in
// parts as they are written; the object appears only when the upload
// completes. An aborted upload is cleaned up with a context of its own
// (the SDK aborts with the writer's context, which by then is
// cancelled, and the parts would stay on the server, billed, until a
// lifecycle rule removes them).
type S3 struct {
	bucket
	client *s3.Client
	name   string
}

var _ Storage = (*S3)(nil)

// S3Options configure [NewS3].
type S3Options struct {
	// PartSize is the size of each uploaded part; 0 means 5 MiB (S3's
	// minimum; the SDK's transfer manager was seen using 8 MiB parts
	// below that). Memory per upload is about PartSize × (Concurrency+1).
	PartSize int
	// Concurrency is the number of parts uploaded at once; 0 means 1.
	Concurrency int
	// ChecksumWhenRequired sends request checksums only where S3 requires
	// them, for S3-compatible servers that reject the SDK's default
	// trailing checksums.
	ChecksumWhenRequired bool
}

// OpenS3 opens the bucket of an s3:// URL. Credentials and the region
// come from the usual AWS sources (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
// AWS_REGION, shared config files, instance roles). Query options:
//
//	endpoint=URL       an S3-compatible server (MinIO, SeaweedFS, …);
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
func NewS3(ctx context.Context, client *s3.Client, name string, opts S3Options) (*S3, error) {
	if name == "" {
		return nil, fmt.Errorf("storage: s3: no bucket name")
	}
	bo := &s3blob.Options{}
	if opts.ChecksumWhenRequired {
		bo.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
	}
	b, err := s3blob.OpenBucket(ctx, client, name, bo)
	if err != nil {
		return nil, fmt.Errorf("storage: s3: %w", err)
	}
	if opts.PartSize <= 0 {
		opts.PartSize = 5 << 20
	}
	if opts.Concurrency <= 0 {
		opts.Concurrency = 1
	}
	s := &S3{client: client, name: name}
	s.bucket = bucket{b: b, opts: blobWriterOptions(opts), aborted: s.abortUploads}
	return s, nil
}

// abortUploads aborts every multipart upload still open under key.
func (s *S3) abortUploads(ctx context.Context, key string) {
	out, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.name, Prefix: &key})
	if err != nil {
		return
	}
	for _, up := range out.Uploads {
		if up.Key == nil || *up.Key != key {
			continue
		}
		s.client.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &s.name, Key: up.Key, UploadId: up.UploadId})
	}
}

// PendingUploads returns the keys of the multipart uploads not yet
// completed or aborted under prefix.
func (s *S3) PendingUploads(ctx context.Context, prefix string) ([]string, error) {
	out, err := s.client.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &s.name, Prefix: &prefix})
	var ae smithy.APIError
	if errors.As(err, &ae) && ae.ErrorCode() == "NoSuchUpload" {
		return nil, nil // gofakes3's answer for a bucket that never had an upload
	}
	if err != nil {
		return nil, fmt.Errorf("list uploads: %w", err)
	}
	var keys []string
	for _, up := range out.Uploads {
		keys = append(keys, aws.ToString(up.Key))
	}
	return keys, nil
}

func blobWriterOptions(o S3Options) blob.WriterOptions {
	return blob.WriterOptions{BufferSize: o.PartSize, MaxConcurrency: o.Concurrency, DisableContentTypeDetection: true}
}
