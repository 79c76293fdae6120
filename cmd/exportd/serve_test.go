package main

import (
	"bytes"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/alecthomas/kong"
)

// parseServe parses args as a command line the way main does.
func parseServe(t *testing.T, args ...string) (*serveCmd, error) {
	t.Helper()
	var c cli
	p := newParser(&c)
	p.Exit = func(int) { t.Fatalf("the parser exited on %q", args) }
	_, err := p.Parse(args)
	return &c.Serve, err
}

// Every serve flag is also read from EXPORTD_<FLAG>; a flag given on the
// command line wins over its variable; --help names the variables.
func TestServeSettingsFromEnvironment(t *testing.T) {
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "jobs.secret")
	if err := os.WriteFile(secretFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for k, v := range map[string]string{
		"EXPORTD_CONFIG":           filepath.Join(dir, "datasets.yaml"),
		"EXPORTD_ADDR":             "127.0.0.1:1",
		"EXPORTD_KEEPALIVE":        "3s",
		"EXPORTD_MAX_EXPORTS":      "-1",
		"EXPORTD_MAX_PER_CLIENT":   "7",
		"EXPORTD_TRUSTED_PROXIES":  "10.0.0.0/8,127.0.0.1/32",
		"EXPORTD_LOG_FORMAT":       "json",
		"EXPORTD_JOBS":             "true",
		"EXPORTD_JOBS_TTL":         "90m",
		"EXPORTD_JOBS_WORKERS":     "-1",
		"EXPORTD_JOBS_SECRET_FILE": secretFile,
	} {
		t.Setenv(k, v)
	}
	c, err := parseServe(t, "serve", "--addr", "127.0.0.1:9", "--max-per-client", "-1")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := c.linkKeys()
	if err != nil || keys == nil || keys.Len() != 1 {
		t.Fatalf("link keys from EXPORTD_JOBS_SECRET_FILE (the old name of EXPORTD_LINK_SECRET_FILE): %v %v", keys, err)
	}
	got := []any{c.Config, c.Addr, c.KeepAlive, c.MaxExports, c.MaxPerClient, c.TrustedProxies, c.LogFormat, c.LogLevel,
		c.Jobs, c.JobsTTL, c.JobsWorkers, c.LinkSecretFile, c.WriteTimeout}
	want := []any{filepath.Join(dir, "datasets.yaml"), "127.0.0.1:9", 3 * time.Second, -1, -1, []string{"10.0.0.0/8", "127.0.0.1/32"}, "json", "info",
		true, 90 * time.Minute, -1, secretFile, 60 * time.Second}
	for i := range want {
		if !equal(got[i], want[i]) {
			t.Errorf("setting %d: %v, want %v", i, got[i], want[i])
		}
	}

	// Every flag of serve has its variable, and --help shows it.
	var c2 cli
	p := newParser(&c2)
	var serve *kong.Node
	for _, n := range p.Model.Children {
		if n.Name == "serve" {
			serve = n
		}
	}
	var help bytes.Buffer
	p.Stdout, p.Exit = &help, func(int) {}
	p.Parse([]string{"serve", "--help"})
	for _, f := range serve.Flags {
		if f.Name == "help" {
			continue
		}
		env := "EXPORTD_" + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
		if len(f.Envs) == 0 || f.Envs[0] != env { // the link keys' also have their old names
			t.Errorf("--%s: variables %v, want %s", f.Name, f.Envs, env)
		}
		if !strings.Contains(help.String(), "$"+env) {
			t.Errorf("serve --help does not name $%s", env)
		}
	}
	// Other commands read no EXPORTD_ variables of their own.
	t.Setenv("EXPORTD_OUTPUT", "from-env.xlsx")
	var c3 cli
	if _, err := newParser(&c3).Parse([]string{"export", "--db", "sqlite:x.db", "--query", "SELECT 1"}); err != nil || c3.Export.Output != "" {
		t.Errorf("export read EXPORTD_OUTPUT: %q %v", c3.Export.Output, err)
	}
}

func equal(a, b any) bool {
	if as, ok := a.([]string); ok {
		bs, _ := b.([]string)
		return slices.Equal(as, bs)
	}
	return a == b
}

// "-1" after a number flag is its value, as the help promises ("-1 = no
// limit"), not a short flag; other values after a flag are unchanged.
func TestNegativeNumbers(t *testing.T) {
	c, err := parseServe(t, "serve", "--config", "d.yaml", "--max-exports", "-1", "--max-per-client=-1", "--jobs-workers", "-1")
	if err != nil {
		t.Fatal(err)
	}
	if c.MaxExports != -1 || c.MaxPerClient != -1 || c.JobsWorkers != -1 {
		t.Errorf("max-exports %d, max-per-client %d, jobs-workers %d", c.MaxExports, c.MaxPerClient, c.JobsWorkers)
	}
	for _, args := range [][]string{
		{"serve", "--config", "d.yaml", "--max-exports", "--addr"}, // a flag is still no number
		{"serve", "--config", "d.yaml", "--max-exports", "-x"},
		{"serve", "--config", "d.yaml", "--max-exports", "-1.5"},
	} {
		if _, err := parseServe(t, args...); err == nil {
			t.Errorf("%q accepted", args)
		}
	}
}

// The link keys from a file, through the environment only: the server
// starts with background jobs and takes one; an empty key file, a key
// given twice, a short key or none is refused (exit 2) before anything
// starts, and so is a datasets file that accepts signed links without
// keys.
func TestServeLinkSecretFile(t *testing.T) {
	dir, cfg := demo(t)
	secretFile := filepath.Join(dir, "jobs.secret")
	if err := os.WriteFile(secretFile, []byte("0123456789abcdef0123456789abcdef\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	signed := filepath.Join(dir, "signed.yaml")
	if b, err := os.ReadFile(cfg); err != nil {
		t.Fatal(err)
	} else if err := os.WriteFile(signed, bytes.Replace(b, []byte("auth:\n"), []byte("auth:\n  signed_links: true\n"), 1), 0o600); err != nil {
		t.Fatal(err)
	}
	empty := filepath.Join(dir, "empty.secret")
	if err := os.WriteFile(empty, []byte("\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	env := []string{"EXPORTD_CONFIG=" + cfg, "EXPORTD_ADDR=" + addr, "EXPORTD_JOBS=1",
		"EXPORTD_JOBS_STORAGE=file://" + filepath.Join(dir, "results")}

	for _, tc := range []struct {
		env  []string
		args []string
		msg  string
	}{
		{[]string{"EXPORTD_LINK_SECRET_FILE=" + empty}, nil, "--link-secret-file: " + empty + " is empty"},
		{[]string{"EXPORTD_LINK_SECRET_FILE=" + secretFile}, []string{"--link-secret", "0123456789abcdef0123"}, "both given"},
		{[]string{"EXPORTD_JOBS_SECRET_FILE=" + secretFile}, []string{"--jobs-secret", "0123456789abcdef0123"}, "both given"},
		{nil, []string{"--link-secret", "short"}, "--link-secret: link keys: key 1 of 1 has 5 bytes"},
		{nil, nil, "link keys: background jobs need link keys to sign download links: give --link-secret-file"},
		{[]string{"EXPORTD_JOBS=false", "EXPORTD_CONFIG=" + signed}, nil, "auth.signed_links needs the keys that verify the links: give --link-secret-file"},
	} {
		cmd := exec.Command(exportdBin, append([]string{"serve"}, tc.args...)...)
		cmd.Dir = dir
		cmd.Env = append(append(os.Environ(), env...), tc.env...)
		out, err := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), tc.msg) {
			t.Errorf("%v %v: exit %d (%v), want 2 and %q: %s", tc.env, tc.args, code, err, tc.msg, out)
		}
	}

	var log bytes.Buffer
	cmd := exec.Command(exportdBin, "serve")
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), env...), "EXPORTD_LINK_SECRET_FILE="+secretFile)
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("serve output:\n%s", log.String())
		}
	})
	base := "http://" + addr
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(50 * time.Millisecond) {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			break
		}
		select {
		case err := <-exited:
			exited <- err
			t.Fatalf("serve exited: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("serve did not start: %v", err)
		}
	}
	resp, err := http.Post(base+"/v1/datasets/accounts/jobs", "application/json", strings.NewReader(`{"format":"csv"}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted || !strings.Contains(string(body), `"download_url"`) && !strings.Contains(string(body), `"id"`) {
		t.Errorf("job: %d %s", resp.StatusCode, body)
	}
}
