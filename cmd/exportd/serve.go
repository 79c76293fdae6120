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

	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/datasets"

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

	// The link keys sign job download links and verify host-application
	// links (auth.signed_links): one setting for both.
	LinkSecret     string `help:"Key that signs links (at least 16 bytes; the same on every node): job download links, and the host application's export links when the datasets file says auth.signed_links: true. Required with --jobs or signed_links." aliases:"jobs-secret" placeholder:"SECRET" env:"EXPORTD_LINK_SECRET,EXPORTD_JOBS_SECRET"`
	LinkSecretFile string `help:"File of the link keys instead of --link-secret, one a line: the last signs, every one verifies (rotate by adding a line); read again on SIGHUP." aliases:"jobs-secret-file" type:"path" placeholder:"FILE" env:"EXPORTD_LINK_SECRET_FILE,EXPORTD_JOBS_SECRET_FILE"`
}

func (c *serveCmd) Run(ctx context.Context) error {
	cfg, err := datasets.LoadConfig(c.Config)
	if err != nil {
		return usageError{err}
	}
	keys, err := c.linkKeys()
	if err != nil {
		return usageError{err}
	}
	if err := server.NeedLinkKeys(cfg, c.Jobs, keys); err != nil {
		return settingError(err) // before any database is opened
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
	sc, err := c.config(ctx, cfg, pool, log)
	if err != nil {
		return err
	}
	jc, err := c.jobFlags.config(sc.Addr)
	if err != nil {
		return err
	}
	rl := &reloader{path: c.Config, pool: pool, log: log, keys: keys, linkSecretFile: c.LinkSecretFile} // reload.go
	if jc != nil {
		// The schedules' deliveries (jobs/deliver.go): refused now, and on
		// each reload, when their recipients could never be reached.
		if jc.Delivery, err = c.delivery(cfg, keys); err != nil {
			return usageError{err}
		}
		rl.checkDelivery = func(cfg *exportd.Config) error {
			_, err := c.delivery(cfg, rl.keys)
			return err
		}
	} else {
		for _, d := range cfg.Datasets {
			if len(d.Schedules) > 0 {
				log.Warn("the datasets file has schedules, which run only with --jobs", "dataset", d.Name)
			}
		}
	}
	defer rl.close()
	sc.Reload = rl.reload
	s, err := server.Open(ctx, cfg, server.Options{Config: sc, LinkKeys: keys, Jobs: jc, JobQueue: c.JobsQueue, JobStorage: c.JobsStorage})
	if err != nil {
		return settingError(err)
	}
	defer s.Close()
	rl.srv, rl.jobs, rl.trail = s, s.Jobs(), s.Audit()
	defer rl.onHangup(ctx)()
	return s.ListenAndServe(ctx)
}

// linkKeys returns the link keys of --link-secret or --link-secret-file,
// or nil when neither is given.
func (c *serveCmd) linkKeys() (*auth.Keys, error) {
	switch {
	case c.LinkSecretFile != "" && c.LinkSecret != "":
		return nil, errors.New("--link-secret and --link-secret-file (or their EXPORTD_ variables) both given: keep one")
	case c.LinkSecretFile != "":
		return readLinkKeys(c.LinkSecretFile)
	case c.LinkSecret != "":
		keys, err := auth.NewKeys([]byte(c.LinkSecret))
		if err != nil {
			return nil, fmt.Errorf("--link-secret: %w", err)
		}
		return keys, nil
	}
	return nil, nil
}

// settingError marks a mistake in the settings as a usage error (exit 2),
// saying which flags give link keys when they are missing.
func settingError(err error) error {
	var se *server.SettingError
	if !errors.As(err, &se) {
		return err
	}
	if se.Setting == "link keys" {
		err = fmt.Errorf("%w: give --link-secret-file FILE or --link-secret (EXPORTD_LINK_SECRET_FILE, EXPORTD_LINK_SECRET), at least 16 bytes, the same on every node", err)
	}
	return usageError{err}
}

// readLinkKeys reads the link keys of a --link-secret-file.
func readLinkKeys(path string) (*auth.Keys, error) {
	secrets, err := readSecretFile(path)
	if err != nil {
		return nil, fmt.Errorf("--link-secret-file: %w", err)
	}
	keys, err := auth.NewKeys(byteSecrets(secrets)...)
	if err != nil {
		return nil, fmt.Errorf("--link-secret-file %s: %w", path, err)
	}
	return keys, nil
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
// server's settings.
func (c *serveCmd) config(ctx context.Context, cfg *exportd.Config, pool *sourcePool, log *slog.Logger) (sc server.Config, err error) {
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
				return sc, usageError{fmt.Errorf("--trusted-proxies: %w", err)}
			}
			pfx = netip.PrefixFrom(addr, addr.BitLen())
		}
		sc.TrustedProxies = append(sc.TrustedProxies, pfx)
	}
	if sc.Sources, err = pool.sources(ctx, cfg); err != nil {
		return sc, err
	}
	return sc, nil
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
