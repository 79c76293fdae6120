package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/server"
)

// pruneEvery is how often serve removes audit records past the retention.
const pruneEvery = 24 * time.Hour

// openAudit opens the audit trail of the config's privacy: block when the
// config has a personal dataset (or names a key file), puts it in sc, and
// starts the daily retention pruning. stop ends the pruning goroutine,
// waits for it and closes the trail.
func openAudit(ctx context.Context, cfg *exportd.Config, sc *server.Config, log *slog.Logger) (stop func(), err error) {
	pc := cfg.Privacy
	personal := false
	for _, d := range cfg.Datasets {
		personal = personal || d.Personal
	}
	if !personal && pc.AuditKeyFile == "" {
		return func() {}, nil
	}
	keys, err := audit.LoadKeys(pc.AuditKeyFile)
	if err != nil {
		return nil, usageError{fmt.Errorf("privacy.audit.key_file: %w", err)}
	}
	// Each record is also one JSON line carrying its MAC (for `exportd
	// audit verify --log`), whatever --log-format and --log-level say: in
	// privacy.audit.log when it names a file, else on stderr among the
	// server's log lines (newLogger writes there too; writes to one
	// *os.File do not interleave).
	var (
		auditLog io.Writer = os.Stderr
		logFile  *os.File
	)
	if pc.AuditLog != "" {
		logFile, err = os.OpenFile(pc.AuditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			return nil, usageError{fmt.Errorf("privacy.audit.log: %w", err)}
		}
		auditLog = logFile
	}
	st, err := audit.Open(ctx, pc.AuditDB, audit.Options{Keys: keys, Log: auditLog, Retention: pc.Retention})
	if err != nil {
		if logFile != nil {
			logFile.Close()
		}
		return nil, fmt.Errorf("privacy.audit.db: %w", err)
	}
	sc.Audit = st

	// Retention: prune once at start and then once a day. The goroutine is
	// owned by serve: stop ends it and waits before the trail is closed.
	pctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(pruneEvery)
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
	return func() {
		cancel()
		wg.Wait()
		st.Close()
		if logFile != nil {
			logFile.Close()
		}
	}, nil
}
