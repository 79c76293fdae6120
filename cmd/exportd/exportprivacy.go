package main

// The privacy rules of a local export (exportd export --config … --dataset
// NAME) of a personal dataset. Whoever runs the command can read the
// datasets file and reach the databases, so the rules cannot stop a
// determined operator; what they do is keep the command from being a
// quiet way around them. A local export of a personal dataset:
//
//   - needs --purpose and --purpose-text, checked by the export's plan as
//     on the server;
//   - needs --roles, the roles whose masking applies: the command does not
//     assume any role (not even admin), the operator names it, and the
//     audit record shows it was named on the command line;
//   - takes --columns, which can only leave columns out;
//   - is recorded in the configured audit trail (privacy.audit), with the
//     operating-system user as the principal and "local:HOST" as the
//     client: a record of intent before the first byte, the outcome with
//     the SHA-256 of the file's bytes before the file is put in place. If
//     either cannot be written, no file is left behind. Refusals (no
//     purpose, a forbidden column…) are recorded too, as denied.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/user"
	"strings"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/mask"
	"github.com/exportd/exportd/plan"
)

// localTrail is the audit trail of a local export of a personal dataset.
type localTrail struct {
	store   *audit.Store
	logFile *os.File // privacy.audit.log, when the trail has one
	d       *exportd.Dataset
}

// openLocalTrail opens the configured audit trail for an export of the
// personal dataset d.
func openLocalTrail(ctx context.Context, cfg *exportd.Config, d *exportd.Dataset) (*localTrail, error) {
	keys, err := audit.LoadKeys(cfg.Privacy.AuditKeyFile)
	if err != nil {
		return nil, usageError{fmt.Errorf("dataset %s holds personal data, and its export is recorded in the audit trail: privacy.audit.key_file: %w", d.Name, err)}
	}
	t := &localTrail{d: d}
	// The record's JSON line goes to privacy.audit.log, as the server's
	// do, so `audit verify --log` sees local exports too. Without that
	// file the command prints no line (the terminal is the operator's,
	// not a log).
	opts := audit.Options{Keys: keys, Retention: cfg.Privacy.Retention}
	if cfg.Privacy.AuditLog != "" {
		if t.logFile, err = os.OpenFile(cfg.Privacy.AuditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err != nil {
			return nil, usageError{fmt.Errorf("privacy.audit.log: %w", err)}
		}
		opts.Log = t.logFile
	}
	if t.store, err = audit.Open(ctx, cfg.Privacy.AuditDB, opts); err != nil {
		t.close()
		return nil, fmt.Errorf("privacy.audit.db: %w", err)
	}
	return t, nil
}

// denied records a refused export: what was asked, and why it was
// refused. It returns the error of the trail, if any.
func (t *localTrail) denied(ctx context.Context, req plan.Request, why error) error {
	params := map[string]string{}
	for k, v := range req.Params {
		params[k] = strings.Join(v, ",")
	}
	rec := audit.Record{Principal: req.Principal.Name, Roles: req.Principal.Roles, Client: req.Principal.Client,
		Dataset: t.d.Name, Purpose: req.Purpose, Columns: req.Columns, Format: string(req.Format),
		Outcome: audit.OutcomeDenied, Error: why.Error()}
	rec.Params, _ = json.Marshal(params)
	if err := t.store.Append(context.WithoutCancel(ctx), &rec); err != nil && !errors.Is(err, audit.ErrNotLogged) {
		return fmt.Errorf("audit: %w", err)
	}
	return nil
}

func (t *localTrail) close() {
	if t == nil {
		return
	}
	if t.store != nil {
		t.store.Close()
	}
	if t.logFile != nil {
		t.logFile.Close()
	}
}

// flagError names the command-line flag of a plan's error about a field
// of the request, so the operator sees what to change.
func flagError(d *exportd.Dataset, err error) error {
	var pu *exportd.PurposeError
	var pe *exportd.ParamError
	var ce *mask.ColumnError
	switch {
	case errors.As(err, &pu):
		flag := map[string]string{"purpose": "--purpose", "purpose_text": "--purpose-text"}[pu.Field]
		if flag == "" {
			flag = pu.Field
		}
		return fmt.Errorf("%s: %s", flag, pu.Reason)
	case errors.As(err, &ce):
		return fmt.Errorf("--columns: %w", err)
	case errors.As(err, &pe) && pe.Param == "columns":
		return fmt.Errorf("--columns: %s", pe.Reason)
	case errors.As(err, &pe) && pe.Param == "sheet":
		return fmt.Errorf("--sheet: %s", pe.Reason)
	}
	return fmt.Errorf("dataset %s: %w", d.Name, err)
}

// localUser is the operating-system user running the command.
func localUser() string {
	if u, err := user.Current(); err == nil && u.Username != "" {
		return u.Username
	}
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return fmt.Sprintf("uid:%d", os.Getuid())
}

func hostname() string {
	h, err := os.Hostname()
	if err != nil {
		return "unknown"
	}
	return h
}
