package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/server"
)

type serveCmd struct {
	Config         string        `help:"Datasets file." required:"" type:"path" placeholder:"FILE"`
	Addr           string        `help:"Address to listen on." default:"127.0.0.1:8080"`
	KeepAlive      time.Duration `name:"keepalive" help:"Send bytes that change nothing in the file when no row has come for this long: an empty deflate block (XLSX; CSV/TSV/JSONL when gzip-encoded) or a space (JSONL); keep it under the proxy's read timeout; 0 turns it off." default:"500ms"`
	WriteTimeout   time.Duration `help:"Rolling deadline of each write to a client." default:"60s"`
	MaxDuration    time.Duration `help:"Longest export when its dataset sets no max_duration; 0 = no bound." default:"0"`
	Slots          int           `help:"Exports that run at once; the others are answered at once and wait, fairly between clients, with keep-alives. 0 = two per core; -1 = no limit." default:"0"`
	MaxExports     int           `help:"Most exports admitted at once, running or waiting; beyond it 503 with Retry-After. -1 = no limit." default:"4096"`
	MaxPerClient   int           `help:"Most exports one client has admitted at once, running or waiting. -1 = no limit." default:"1024"`
	ShutdownGrace  time.Duration `help:"On SIGINT/SIGTERM, how long running streams may finish." default:"30s"`
	TrustedProxies []string      `help:"Proxy addresses (CIDR) whose X-Real-IP/X-Forwarded-For name the client." placeholder:"CIDR"`
	LogFormat      string        `help:"Log format." enum:"text,json" default:"text"`
	LogLevel       string        `help:"Log level." enum:"debug,info,warn,error" default:"info"`

	jobFlags `embed:""` // background jobs (background.go)

	JobsSecretFile string `help:"File of the secrets that sign download links, one a line, instead of --jobs-secret: the last signs, every one verifies (rotate by adding a line); read again on SIGHUP." type:"path" placeholder:"FILE"`
}

func (c *serveCmd) Run(ctx context.Context) error {
	cfg, err := exportd.LoadConfig(c.Config)
	if err != nil {
		return usageError{err}
	}
	if err := c.readSecrets(); err != nil {
		return usageError{err}
	}
	log := newLogger(c.LogFormat, c.LogLevel)
	// A pool for every export that may run (the slots and their headroom,
	// twice the slots: see server.Config.Slots) plus room for readiness
	// checks and estimates, so no running export waits for a connection;
	// waiting exports hold none.
	pool := &sourcePool{maxConns: 100, open: map[string]exportd.Source{}}
	slots := c.Slots
	if slots == 0 {
		slots = server.DefaultSlots()
	}
	if slots > 0 {
		pool.maxConns = 2*slots + 4
	}
	defer pool.close()
	sc, closeAuth, err := c.config(ctx, cfg, pool, log)
	if err != nil {
		return err
	}
	defer closeAuth()
	// The trail first: a job's worker records personal exports in it.
	stopAudit, err := openAudit(ctx, cfg, &sc, log) // privacy.go
	if err != nil {
		return err
	}
	defer stopAudit()
	stopJobs, err := c.jobFlags.start(ctx, c.Config, &sc, log)
	if err != nil {
		return err
	}
	defer stopJobs()
	rl := &reloader{path: c.Config, pool: pool, log: log, jobs: sc.Jobs, jobsSecretFile: c.JobsSecretFile, trail: sc.Audit} // reload.go
	defer rl.close()
	sc.Reload = rl.reload
	s, err := server.New(sc)
	if err != nil {
		return err
	}
	rl.srv = s
	defer rl.onHangup(ctx)()
	return s.ListenAndServe(ctx)
}

// readSecrets reads the secrets given by file into their settings.
func (c *serveCmd) readSecrets() error {
	if c.JobsSecretFile == "" {
		return nil
	}
	if c.JobsSecret != "" {
		return errors.New("--jobs-secret and --jobs-secret-file (or their EXPORTD_ variables) both given: keep one")
	}
	secrets, err := readSecretFile(c.JobsSecretFile)
	if err != nil {
		return fmt.Errorf("--jobs-secret-file: %w", err)
	}
	c.JobsSecret, c.jobsSecrets = secrets[len(secrets)-1], secrets
	return nil
}

// readSecretFile returns the secrets of a file, one a line, without the
// white space around them (the newline of "openssl rand -hex 32 > FILE");
// blank lines and lines starting with # are skipped. The last is the
// newest: it signs, and every one verifies (a rotation appends the new
// secret, and drops the old one once its links have expired).
func readSecretFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var secrets []string
	for line := range strings.SplitSeq(string(b), "\n") {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			secrets = append(secrets, line)
		}
	}
	if len(secrets) == 0 {
		return nil, fmt.Errorf("%s is empty", path)
	}
	return secrets, nil
}

// config opens a source per connection (from pool) and builds the
// server's Config; closeAuth closes what the authenticator opened.
func (c *serveCmd) config(ctx context.Context, cfg *exportd.Config, pool *sourcePool, log *slog.Logger) (sc server.Config, closeAuth func(), err error) {
	keepAlive := c.KeepAlive
	if keepAlive == 0 {
		keepAlive = -1 // off
	}
	sc = server.Config{
		Datasets:            cfg,
		Addr:                c.Addr,
		KeepAlive:           keepAlive,
		WriteTimeout:        c.WriteTimeout,
		MaxDuration:         c.MaxDuration,
		Slots:               c.Slots,
		MaxExports:          c.MaxExports,
		MaxExportsPerClient: c.MaxPerClient,
		ShutdownGrace:       c.ShutdownGrace,
		Logger:              log,
	}
	for _, p := range c.TrustedProxies {
		pfx, err := netip.ParsePrefix(p)
		if err != nil {
			addr, err2 := netip.ParseAddr(p)
			if err2 != nil {
				return sc, nil, usageError{fmt.Errorf("--trusted-proxies: %w", err)}
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		sc.TrustedProxies = append(sc.TrustedProxies, pfx)
	}
	if sc.Sources, err = pool.sources(ctx, cfg); err != nil {
		return sc, nil, err
	}
	a, closeAuth, err := authenticator(ctx, cfg) // token.go
	if err != nil {
		return sc, nil, err
	}
	sc.Auth = a
	return sc, closeAuth, nil
}

func newLogger(format, level string) *slog.Logger {
	var lv slog.Level
	lv.UnmarshalText([]byte(level))
	opts := &slog.HandlerOptions{Level: lv}
	if format == "json" {
		return slog.New(slog.NewJSONHandler(os.Stderr, opts))
	}
	return slog.New(slog.NewTextHandler(os.Stderr, opts))
}
