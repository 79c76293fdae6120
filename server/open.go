package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/jobs/storage"
)

// Options is what [Open] needs besides the datasets file: the server's
// settings (Config: Sources and the settings of New; Open fills in
// Datasets, Auth, Audit and Jobs), the link keys and the background jobs.
type Options struct {
	Config
	// LinkKeys sign job download links and verify a host application's
	// links (the datasets file's auth.signed_links). Required with Jobs
	// or signed_links.
	LinkKeys *auth.Keys
	// Jobs, when set, runs background jobs with these settings of the job
	// manager; Open fills in Datasets, Sources, Queue, Storage, Links,
	// Audit and Logger.
	Jobs *jobs.Config
	// JobQueue is the job queue's URL (see jobs.OpenQueue); "" means
	// sqlite:exportd-jobs.db beside the datasets file.
	JobQueue string
	// JobStorage is the result storage's URL (see storage.Open).
	JobStorage string
	// AuditLog receives each audit record as a JSON line when the datasets
	// file names no privacy.audit.log; nil means os.Stderr.
	AuditLog io.Writer
}

// SettingError is a mistake in the settings Open was given (or in what the
// datasets file names, such as an unreadable audit key file), as opposed
// to a failure to reach something that is set right.
type SettingError struct {
	Setting string // e.g. "privacy.audit.key_file", "link keys"
	Err     error
}

func (e *SettingError) Error() string { return e.Setting + ": " + e.Err.Error() }
func (e *SettingError) Unwrap() error { return e.Err }

// auditPruneEvery is how often the server removes audit records past the
// retention.
const auditPruneEvery = 24 * time.Hour

// Open opens what the datasets file cfg names and returns a server ready
// to ListenAndServe: the token store (auth.tokens_db, created the first
// time), the audit trail when a dataset is personal or a key file is named
// (privacy.audit; pruned of expired records at start and daily) and, with
// opts.Jobs, the job queue, the result storage and the started job
// manager. [Server.Close] releases all of it once ListenAndServe has
// returned: jobs stop (running ones get a while to finish), then the
// trail and the stores close. Mistakes in the settings are
// *[SettingError]s.
func Open(ctx context.Context, cfg *exportd.Config, opts Options) (s *Server, err error) {
	if err := NeedLinkKeys(cfg, opts.Jobs != nil, opts.LinkKeys); err != nil {
		return nil, err
	}
	var closers []func()
	defer func() {
		if err != nil {
			for i := len(closers) - 1; i >= 0; i-- {
				closers[i]()
			}
		}
	}()
	sc := opts.Config
	sc.Datasets = cfg
	if sc.Logger == nil {
		sc.Logger = slog.Default()
	}
	a, closeAuth, err := OpenAuth(ctx, cfg, opts.LinkKeys)
	if err != nil {
		return nil, err
	}
	closers = append(closers, closeAuth)
	sc.Auth = a
	trail, closeTrail, err := openAudit(ctx, cfg, opts.AuditLog, sc.Logger)
	if err != nil {
		return nil, err
	}
	if trail != nil {
		closers = append(closers, closeTrail)
		sc.Audit = trail
	}
	if opts.Jobs != nil {
		m, stopJobs, err := openJobs(ctx, cfg, sc, opts)
		if err != nil {
			return nil, err
		}
		closers = append(closers, stopJobs)
		sc.Jobs = m
	}
	if s, err = New(sc); err != nil {
		return nil, err
	}
	s.closers = closers
	return s, nil
}

// NeedLinkKeys returns a *[SettingError] when a server of the datasets file
// cfg (with background jobs when jobs is set) would sign or accept links
// without keys: jobs sign their download links, auth.signed_links accepts
// a host application's.
func NeedLinkKeys(cfg *exportd.Config, jobs bool, keys *auth.Keys) error {
	switch {
	case keys != nil:
		return nil
	case jobs:
		return &SettingError{"link keys", errors.New("background jobs need link keys to sign download links")}
	case cfg.Auth.SignedLinks:
		return &SettingError{"link keys", fmt.Errorf("%s: auth.signed_links needs the keys that verify the links", cfg.Path)}
	}
	return nil
}

// Close releases what Open opened, in the reverse order; call it after
// ListenAndServe has returned. A Server made by New has nothing to close.
func (s *Server) Close() {
	for i := len(s.closers) - 1; i >= 0; i-- {
		s.closers[i]()
	}
	s.closers = nil
}

// Jobs returns the server's job manager, nil without background jobs.
func (s *Server) Jobs() *jobs.Manager { return s.cfg.Jobs }

// Audit returns the server's audit trail, nil without one.
func (s *Server) Audit() *audit.Store { return s.cfg.Audit }

// OpenAuth builds the access control of a datasets file's auth: block: the
// token store (opened, created the first time), the trusted header, signed
// links (verified by keys, the server's link keys) and the anonymous
// principal. It returns a function closing the store.
func OpenAuth(ctx context.Context, cfg *exportd.Config, keys *auth.Keys) (*auth.Authenticator, func(), error) {
	a := cfg.Auth
	ac := auth.Config{}
	closeStore := func() {}
	if a.TokensDB != "" {
		s, err := auth.OpenStore(ctx, a.TokensDB)
		if err != nil {
			return nil, nil, fmt.Errorf("auth.tokens_db: %w", err)
		}
		ac.Tokens, closeStore = s, func() { s.Close() }
	}
	if h := a.TrustedHeader; h != nil {
		ac.Header = &auth.HeaderTrust{User: h.User, Roles: h.Roles, AttrsPrefix: h.AttrsPrefix, Proxies: h.Proxies}
	}
	if a.SignedLinks {
		ac.Links = keys
	}
	if an := a.Anonymous; an != nil {
		ac.Anonymous = &auth.Principal{Name: auth.AnonymousName, Roles: an.Roles}
		ac.AnonymousFrom = an.From
	}
	return auth.New(ac), closeStore, nil
}

// openAudit opens the audit trail of cfg's privacy: block when cfg has a
// personal dataset or names a key file (else it returns nil), and starts
// its daily retention pruning. closeTrail ends the pruning, waits for it
// and closes the trail.
func openAudit(ctx context.Context, cfg *exportd.Config, recordLog io.Writer, log *slog.Logger) (trail *audit.Store, closeTrail func(), err error) {
	pc := cfg.Privacy
	personal := false
	for _, d := range cfg.Datasets {
		personal = personal || d.Personal
	}
	if !personal && pc.AuditKeyFile == "" {
		return nil, nil, nil
	}
	keys, err := audit.LoadKeys(pc.AuditKeyFile)
	if err != nil {
		return nil, nil, &SettingError{"privacy.audit.key_file", err}
	}
	// Each record is also one JSON line carrying its MAC (for `exportd
	// audit verify --log`), whatever the server's log settings: in
	// privacy.audit.log when it names a file, else to recordLog.
	var logFile *os.File
	if recordLog == nil {
		recordLog = os.Stderr
	}
	if pc.AuditLog != "" {
		logFile, err = os.OpenFile(pc.AuditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, nil, &SettingError{"privacy.audit.log", err}
		}
		recordLog = logFile
	}
	st, err := audit.Open(ctx, pc.AuditDB, audit.Options{Keys: keys, Log: recordLog, Retention: pc.Retention})
	if err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return nil, nil, fmt.Errorf("privacy.audit.db: %w", err)
	}
	// Retention: prune once at start and then once a day. The goroutine
	// is owned by the server: closeTrail ends it and waits before the
	// trail is closed.
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(auditPruneEvery)
		defer t.Stop()
		for {
			if n, err := st.PruneExpired(pctx, time.Now()); err != nil && pctx.Err() == nil {
				log.Error("audit prune", "error", err.Error())
			} else if n > 0 {
				log.Info("audit prune", "removed", n)
			}
			select {
			case <-pctx.Done():
				return
			case <-t.C:
			}
		}
	})
	return st, func() {
		cancel()
		wg.Wait()
		st.Close()
		if logFile != nil {
			logFile.Close()
		}
	}, nil
}

// openJobs opens the job queue and the result storage and starts the job
// manager. stop stops the manager (letting running jobs finish for a
// while) and closes the queue and the storage.
func openJobs(ctx context.Context, cfg *exportd.Config, sc Config, opts Options) (m *jobs.Manager, stop func(), err error) {
	queueURL := opts.JobQueue
	if queueURL == "" {
		queueURL = "sqlite:" + filepath.Join(filepath.Dir(cfg.Path), "exportd-jobs.db")
	}
	q, err := jobs.OpenQueue(ctx, queueURL)
	if err != nil {
		return nil, nil, err
	}
	storeURL := opts.JobStorage
	if rest, ok := strings.CutPrefix(storeURL, "file://"); ok && !strings.HasPrefix(rest, "/") {
		storeURL = rest // a relative directory
	}
	st, err := storage.Open(ctx, storeURL)
	if err != nil {
		q.Close()
		return nil, nil, err
	}
	jc := *opts.Jobs
	jc.Datasets, jc.Sources, jc.Queue, jc.Storage, jc.Links, jc.Logger = cfg, sc.Sources, q, st, opts.LinkKeys, sc.Logger
	if sc.Audit != nil {
		jc.Audit = sc.Audit
	}
	m, err = jobs.New(jc)
	if err != nil {
		st.Close()
		q.Close()
		return nil, nil, &SettingError{"jobs", err}
	}
	if err := m.Start(ctx); err != nil {
		st.Close()
		q.Close()
		return nil, nil, err
	}
	sc.Logger.Info("background jobs", "queue", q.Driver(), "workers", jc.Workers, "ttl", jc.ResultTTL.String(), "node", m.NodeID())
	return m, func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.Stop(c); err != nil {
			sc.Logger.Warn("stopping jobs", "error", err.Error())
		}
		st.Close()
		q.Close()
	}, nil
}
