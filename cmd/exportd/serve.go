package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"sort"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/connect"
	"github.com/exportd/exportd/server"
)

type serveCmd struct {
	Config         string        `help:"Datasets file." required:"" type:"path" placeholder:"FILE"`
	Addr           string        `help:"Address to listen on." default:"127.0.0.1:8080"`
	KeepAlive      time.Duration `name:"keepalive" help:"Send bytes that change nothing in the file when no row has come for this long: an empty deflate block (XLSX; CSV/TSV/JSONL when gzip-encoded) or a space (JSONL); keep it under the proxy's read timeout; 0 turns it off." default:"1s"`
	WriteTimeout   time.Duration `help:"Rolling deadline of each write to a client." default:"60s"`
	MaxDuration    time.Duration `help:"Longest export when its dataset sets no max_duration; 0 = no bound." default:"0"`
	MaxExports     int           `help:"Most exports streaming at once; -1 = no limit." default:"32"`
	MaxPerClient   int           `help:"Most exports one client streams at once; -1 = no limit." default:"4"`
	ShutdownGrace  time.Duration `help:"On SIGINT/SIGTERM, how long running streams may finish." default:"30s"`
	TrustedProxies []string      `help:"Proxy addresses (CIDR) whose X-Real-IP/X-Forwarded-For name the client." placeholder:"CIDR"`
	LogFormat      string        `help:"Log format." enum:"text,json" default:"text"`
	LogLevel       string        `help:"Log level." enum:"debug,info,warn,error" default:"info"`

	jobFlags `embed:""` // background jobs (background.go)
}

func (c *serveCmd) Run(ctx context.Context) error {
	cfg, err := exportd.LoadConfig(c.Config)
	if err != nil {
		return usageError{err}
	}
	log := newLogger(c.LogFormat, c.LogLevel)
	sc, closeSources, err := c.config(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer closeSources()
	stopJobs, err := c.jobFlags.start(ctx, c.Config, &sc, log)
	if err != nil {
		return err
	}
	defer stopJobs()
	stopAudit, err := openAudit(ctx, cfg, &sc, log) // privacy.go
	if err != nil {
		return err
	}
	defer stopAudit()
	s, err := server.New(sc)
	if err != nil {
		return err
	}
	return s.ListenAndServe(ctx)
}

// config opens a source per connection and builds the server's Config.
func (c *serveCmd) config(ctx context.Context, cfg *exportd.Config, log *slog.Logger) (server.Config, func(), error) {
	keepAlive := c.KeepAlive
	if keepAlive == 0 {
		keepAlive = -1 // off
	}
	sc := server.Config{
		Datasets:            cfg,
		Sources:             map[string]exportd.Source{},
		Addr:                c.Addr,
		KeepAlive:           keepAlive,
		WriteTimeout:        c.WriteTimeout,
		MaxDuration:         c.MaxDuration,
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
	a, csrfKey, closeAuth, err := authenticator(ctx, cfg) // token.go
	if err != nil {
		return sc, nil, err
	}
	sc.Auth, sc.CSRFKey = a, csrfKey
	closeAll := func() {
		for _, s := range sc.Sources {
			s.Close()
		}
		closeAuth()
	}
	names := make([]string, 0, len(cfg.Connections))
	for n := range cfg.Connections {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		// A pool as large as the export limit (plus room for readiness
		// checks and estimates), so no export waits for a connection.
		pool := 100
		if c.MaxExports > 0 {
			pool = c.MaxExports + 4
		}
		opts := exportd.SourceOptions{Location: cfg.Location, MaxConns: pool}
		src, err := connect.Open(ctx, cfg.Connections[n].URL, opts)
		if err != nil {
			closeAll()
			return sc, nil, fmt.Errorf("connection %s: %w", n, err)
		}
		sc.Sources[n] = src
	}
	return sc, closeAll, nil
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
