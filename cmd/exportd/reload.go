package main

// Reloading `exportd serve`: SIGHUP (systemctl reload) and POST
// /v1/admin/reload re-read the datasets file. The new file is checked in
// full first, as `exportd check` checks it (parsed, then every query
// prepared on its database); a file that does not check is refused, the
// reason logged and counted, and the running configuration stays. Then
// the server and its jobs serve the new datasets: downloads and job
// attempts under way finish on the configuration they started with.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sort"
	"sync"
	"syscall"
	"time"

	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/datasets"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/connect"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/server"
)

// sourcePool keeps the server's database sources, one per connection URL
// and time zone, so that a reload reuses the pools of the connections it
// does not change. A source a reload no longer uses stays open until the
// server exits: a download or a job that started before the reload may
// still be reading from it (an idle pool holds next to nothing).
type sourcePool struct {
	maxConns int
	mu       sync.Mutex
	open     map[string]exportd.Source // by URL and zone
}

// sources returns a source for each connection of cfg, opening those it
// does not have.
func (p *sourcePool) sources(ctx context.Context, cfg *exportd.Config) (map[string]exportd.Source, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	names := make([]string, 0, len(cfg.Connections))
	for n := range cfg.Connections {
		names = append(names, n)
	}
	sort.Strings(names)
	out := make(map[string]exportd.Source, len(names))
	for _, n := range names {
		url := cfg.Connections[n].URL
		key := url + "\x00" + cfg.Location.String()
		src, ok := p.open[key]
		if !ok {
			var err error
			src, err = connect.Open(ctx, url, exportd.SourceOptions{Location: cfg.Location, MaxConns: p.maxConns})
			if err != nil {
				return nil, fmt.Errorf("connection %s: %w", n, err)
			}
			p.open[key] = src
		}
		out[n] = src
	}
	return out, nil
}

func (p *sourcePool) close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for k, s := range p.open {
		s.Close()
		delete(p.open, k)
	}
}

// keepOpen is a source that datasets.Check may close without closing it.
type keepOpen struct{ exportd.Source }

func (keepOpen) Close() error { return nil }

// reloader reloads a running server from its datasets file.
type reloader struct {
	path string
	pool *sourcePool
	log  *slog.Logger
	srv  *server.Server
	jobs *jobs.Manager // nil without background jobs
	// The link keys, and the secrets given by file, read again on each
	// reload: the link keys (--link-secret-file; "" when given otherwise)
	// and the audit trail's keys (privacy.audit.key_file; trail nil
	// without one).
	keys           *auth.Keys
	linkSecretFile string
	trail          *audit.Store

	mu      sync.Mutex // one reload at a time
	closers []func()   // of replaced authenticators, at exit
}

// close closes what replaced configurations opened.
func (rl *reloader) close() {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	for _, c := range rl.closers {
		c()
	}
	rl.closers = nil
}

// reload re-reads and checks the datasets file, then serves it. It
// returns how many datasets are served now.
func (rl *reloader) reload(ctx context.Context) (int, error) {
	rl.mu.Lock()
	defer rl.mu.Unlock()
	n, err := rl.load(ctx)
	if err != nil {
		rl.log.Error("reload refused: the running configuration stays", "config", rl.path, "error", oneLine(err.Error()))
		return 0, err
	}
	return n, nil
}

func (rl *reloader) load(ctx context.Context) (int, error) {
	ctx, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	refuse := func(err error) (int, error) {
		rl.srv.ReloadRefused()
		return 0, err
	}
	cfg, err := datasets.LoadConfig(rl.path)
	if err != nil {
		return refuse(err)
	}
	sources, err := rl.pool.sources(ctx, cfg)
	if err != nil {
		return refuse(err)
	}
	if errs := datasets.Check(ctx, cfg, func(_ context.Context, conn exportd.Connection) (exportd.Source, error) {
		return keepOpen{sources[conn.Name]}, nil
	}); len(errs) > 0 {
		return refuse(fmt.Errorf("%s: %d problem(s) found: %w", rl.path, len(errs), errors.Join(errs...)))
	}
	// The secrets given by file: a rotation needs no restart.
	keys := rl.keys
	if rl.linkSecretFile != "" {
		if keys, err = readLinkKeys(rl.linkSecretFile); err != nil {
			return refuse(err)
		}
	}
	if err := server.NeedLinkKeys(cfg, rl.jobs != nil, keys); err != nil {
		return refuse(settingError(err))
	}
	var auditKeys *audit.Keys
	if rl.trail != nil {
		keys, err := audit.LoadKeys(cfg.Privacy.AuditKeyFile)
		if err != nil {
			return refuse(fmt.Errorf("privacy.audit.key_file: %w", err))
		}
		auditKeys = &keys
	}
	a, closeAuth, err := server.OpenAuth(ctx, cfg, keys)
	if err != nil {
		return refuse(err)
	}
	if err := rl.srv.Reload(cfg, sources, a); err != nil {
		closeAuth()
		return 0, err // counted by Reload
	}
	rl.closers = append(rl.closers, closeAuth)
	rl.keys = keys
	if rl.jobs != nil {
		rl.jobs.Reload(cfg, sources)
		if err := rl.jobs.SetLinks(keys); err != nil {
			return 0, err
		}
	}
	if auditKeys != nil {
		rl.trail.SetKeys(*auditKeys)
	}
	return len(cfg.Datasets), nil
}

// onHangup reloads on each SIGHUP until ctx ends or stop is called; stop
// waits for a reload under way.
func (rl *reloader) onHangup(ctx context.Context) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				rl.log.Info("SIGHUP: reloading the datasets file", "config", rl.path)
				rl.reload(ctx)
			}
		}
	}()
	return func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}
