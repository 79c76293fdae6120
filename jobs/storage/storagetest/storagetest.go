// Package storagetest starts a real S3 protocol server on loopback for
// tests: gofakes3's in-memory backend served over HTTP by httptest, which
// the production S3 client code (aws-sdk-go-v2 through gocloud.dev's
// s3blob) talks to exactly as it talks to S3.
package storagetest

import (
	"net/http/httptest"
	"testing"

	"github.com/johannesboyne/gofakes3"
	"github.com/johannesboyne/gofakes3/backend/s3mem"
)

// S3 starts an S3 server with an empty bucket and returns the storage URL
// (s3://bucket?endpoint=…) and the server's base URL. It sets fake AWS
// credentials in the environment (the server checks no signature), so
// the test cannot be parallel. The server stops at the end of the test.
func S3(t testing.TB, bucket string) (storageURL, endpoint string) {
	t.Helper()
	backend := s3mem.New()
	if err := backend.CreateBucket(bucket); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(gofakes3.New(backend).Server())
	t.Cleanup(srv.Close)
	t.Setenv("AWS_ACCESS_KEY_ID", "exportd-test")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "exportd-test-secret")
	t.Setenv("AWS_REGION", "us-east-1")
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	return "s3://" + bucket + "?endpoint=" + srv.URL, srv.URL
}
