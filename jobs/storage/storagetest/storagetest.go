// Package storagetest starts a real S3 server on loopback for tests:
// Versity's S3 gateway (versitygw) over a private directory. It checks
// SigV4 signatures like S3 does (an unsigned or wrongly signed request
// gets 403), so the production S3 client is tested as it talks to S3.
//
// The binary comes from EXPORTD_VERSITYGW (.ci/run installs it with
// `go install github.com/versity/versitygw/cmd/versitygw@v1.8.0`); without
// it the tests skip, or fail when EXPORTD_REQUIRE_INTEGRATION=1.
package storagetest

import (
	"context"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/exportd/exportd/sourcetest"
)

// Credentials of the test servers.
const (
	AccessKey = "exportd-test"
	SecretKey = "exportd-test-secret-0123456789"
	Region    = "us-east-1"
)

// Server is a running versitygw.
type Server struct {
	// Endpoint is its base URL (http://127.0.0.1:PORT).
	Endpoint string
	bin      string
	addr     string
	dir      string
	log      string
	cmd      *exec.Cmd
	t        testing.TB
}

// Start starts a versitygw on a free loopback port with bucket in it, and
// sets the AWS credentials of the server in the environment (so the test
// cannot be parallel). The server is killed at the end of the test.
func Start(t testing.TB, bucket string) *Server {
	t.Helper()
	bin := sourcetest.IntegrationURL(t, "EXPORTD_VERSITYGW")
	dir := t.TempDir()
	s := &Server{bin: bin, dir: filepath.Join(dir, "data"), log: filepath.Join(dir, "versitygw.log"), t: t}
	if err := os.MkdirAll(s.dir, 0o750); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	l.Close()
	s.Endpoint = "http://" + s.addr
	s.Restart()
	t.Cleanup(func() {
		s.Kill()
		if t.Failed() {
			b, _ := os.ReadFile(s.log)
			t.Logf("versitygw log:\n%s", tail(string(b), 3000))
		}
	})
	t.Setenv("AWS_ACCESS_KEY_ID", AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", SecretKey)
	t.Setenv("AWS_REGION", Region)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if _, err := s.Client().CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatalf("create bucket %s: %v", bucket, err)
	}
	return s
}

// URL returns the storage URL of bucket on the server.
func (s *Server) URL(bucket string) string {
	return "s3://" + bucket + "?endpoint=" + s.Endpoint + "&region=" + Region
}

// Client returns an S3 client of the server with its credentials.
func (s *Server) Client() *s3.Client {
	return s3.New(s3.Options{
		Region:       Region,
		BaseEndpoint: aws.String(s.Endpoint),
		UsePathStyle: true,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKey, SecretKey, ""),
	})
}

// Kill kills the server with SIGKILL (its data stays).
func (s *Server) Kill() {
	if s.cmd != nil && s.cmd.ProcessState == nil {
		s.cmd.Process.Kill()
		s.cmd.Wait()
	}
}

// Restart starts the server again on the same address and data, and
// waits until it answers.
func (s *Server) Restart() {
	t := s.t
	t.Helper()
	f, err := os.OpenFile(s.log, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s.cmd = exec.Command(s.bin, "--port", s.addr, "--access", AccessKey, "--secret", SecretKey, "--region", Region, "posix", s.dir)
	s.cmd.Stdout, s.cmd.Stderr = f, f
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	end := time.Now().Add(30 * time.Second)
	for {
		// Any HTTP answer (an unsigned request gets 403) means it serves.
		resp, err := http.Get(s.Endpoint + "/")
		if err == nil {
			resp.Body.Close()
			return
		}
		if time.Now().After(end) {
			s.Kill()
			b, _ := os.ReadFile(s.log)
			t.Fatalf("versitygw not answering at %s: %v\n%s", s.Endpoint, err, tail(string(b), 2000))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}
