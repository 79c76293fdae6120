package jobs_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// mailpit is a real SMTP server (Mailpit, EXPORTD_MAILPIT) on loopback,
// speaking STARTTLS with a certificate of this test's own, taking any
// login and refusing recipients outside example.com; its HTTP API gives
// the messages it received.
type mailpit struct {
	SMTP string // host:port
	API  string // http://host:port
	TLS  *tls.Config
}

func startMailpit(t *testing.T) *mailpit {
	t.Helper()
	bin := os.Getenv("EXPORTD_MAILPIT")
	if bin == "" {
		if os.Getenv("EXPORTD_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("EXPORTD_MAILPIT is not set (.ci/run installs Mailpit)")
		}
		t.Skip("EXPORTD_MAILPIT is not set: no SMTP server to deliver to")
	}
	dir := t.TempDir()
	certFile, keyFile, pool := selfSigned(t, dir)
	smtpAddr, apiAddr := freeAddr(t), freeAddr(t)
	cmd := exec.Command(bin, "--smtp", smtpAddr, "--listen", apiAddr, "--database", filepath.Join(dir, "mail.db"),
		"--disable-version-check", "--quiet", "--smtp-tls-cert", certFile, "--smtp-tls-key", keyFile,
		"--smtp-require-starttls", "--smtp-auth-accept-any", "--smtp-disable-rdns",
		"--smtp-allowed-recipients", `@example\.com$`) // others are refused (5xx)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("start mailpit: %v", err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
	})
	mp := &mailpit{SMTP: smtpAddr, API: "http://" + apiAddr, TLS: &tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}}
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get(mp.API + "/api/v1/messages")
		if err == nil {
			resp.Body.Close()
			if c, err := net.Dial("tcp", smtpAddr); err == nil {
				c.Close()
				return mp
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("mailpit did not start: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// mailSummary is a message in Mailpit's list.
type mailSummary struct {
	ID      string
	Subject string
	To      []struct{ Address string }
}

// messages returns the messages received, newest first.
func (mp *mailpit) messages(t *testing.T) []mailSummary {
	t.Helper()
	var list struct{ Messages []mailSummary }
	mp.get(t, "/api/v1/messages", &list)
	return list.Messages
}

// raw returns message id as it was received.
func (mp *mailpit) raw(t *testing.T, id string) []byte {
	t.Helper()
	resp, err := http.Get(mp.API + "/api/v1/message/" + id + "/raw")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("raw message: %d %v", resp.StatusCode, err)
	}
	return b
}

func (mp *mailpit) get(t *testing.T, path string, v any) {
	t.Helper()
	resp, err := http.Get(mp.API + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// freeAddr returns a loopback address with a port free just now.
func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// selfSigned writes a certificate for 127.0.0.1 and its key to dir and
// returns their files and a pool that trusts it.
func selfSigned(t *testing.T, dir string) (certFile, keyFile string, pool *x509.CertPool) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}, IsCA: true, BasicConstraintsValid: true,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certFile, keyFile = filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(certFile, certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyFile, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600); err != nil {
		t.Fatal(err)
	}
	pool = x509.NewCertPool()
	if !pool.AppendCertsFromPEM(certPEM) {
		t.Fatal(fmt.Errorf("bad certificate"))
	}
	return certFile, keyFile, pool
}
