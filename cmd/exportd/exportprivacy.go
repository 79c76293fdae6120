package main

// The privacy rules of a local export (exportd export --config … --dataset
// NAME) of a personal dataset. Whoever runs the command can read the
// datasets file and reach the databases, so the rules cannot stop a
// determined operator; what they do is keep the command from being a
// quiet way around them. A local export of a personal dataset:
//
//   - needs --purpose and --purpose-text, checked as the server checks them;
//   - needs --roles, the roles whose masking applies: the command does not
//     assume any role (not even admin), the operator names it, and the
//     audit record shows it was named on the command line;
//   - takes --columns, which can only leave columns out;
//   - writes one record to the configured audit trail (privacy.audit), with
//     the operating-system user as the principal, "local:HOST" as the
//     client and the SHA-256 of the file's bytes. The record is appended
//     before the file is put in place: if the trail cannot be written, no
//     file is left behind. Refusals (no purpose, a forbidden column…) are
//     recorded too, as denied.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"strings"
	"sync"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/mask"
)

// localPrivacy is the privacy plan of one local export.
type localPrivacy struct {
	d       *exportd.Dataset
	plan    mask.Plan
	planned bool         // plan applies
	trail   *audit.Store // nil unless the dataset is personal
	logFile *os.File     // privacy.audit.log, when the trail has one
	rec     audit.Record
	dig     *lockedDigest
}

// localPrivacy loads the dataset of --config/--dataset and applies its
// privacy rules: for a personal dataset it opens the audit trail and
// checks the purpose, the roles and the columns. It returns nil when no
// rule applies (no --config, or a dataset that is not personal and no
// --columns).
func (c *exportCmd) localPrivacy(ctx context.Context) (*localPrivacy, error) {
	if c.Config == "" || c.Dataset == "" {
		if c.Purpose != "" || c.PurposeText != "" || len(c.Roles) > 0 || len(c.Columns) > 0 {
			return nil, usageError{errors.New("--purpose, --purpose-text, --roles and --columns apply to a dataset (--config and --dataset)")}
		}
		return nil, nil
	}
	cfg, err := exportd.LoadConfig(c.Config)
	if err != nil {
		return nil, usageError{err}
	}
	d, ok := cfg.Dataset(c.Dataset)
	if !ok {
		return nil, usageError{fmt.Errorf("dataset %q: %w", c.Dataset, exportd.ErrUnknownDataset)}
	}
	if !d.Personal && len(c.Columns) == 0 && !d.Marking {
		return nil, nil
	}
	if len(d.Columns) == 0 && (d.Personal || len(c.Columns) > 0) {
		return nil, usageError{fmt.Errorf("--columns: dataset %s does not declare its columns", d.Name)}
	}
	lp := &localPrivacy{d: d}
	if d.Personal {
		keys, err := audit.LoadKeys(cfg.Privacy.AuditKeyFile)
		if err != nil {
			return nil, usageError{fmt.Errorf("dataset %s holds personal data, and its export is recorded in the audit trail: privacy.audit.key_file: %w", d.Name, err)}
		}
		// The record's JSON line goes to privacy.audit.log, as the
		// server's do, so `audit verify --log` sees local exports too.
		// Without that file the command prints no line (the terminal is
		// the operator's, not a log).
		opts := audit.Options{Keys: keys, Retention: cfg.Privacy.Retention}
		if cfg.Privacy.AuditLog != "" {
			if lp.logFile, err = os.OpenFile(cfg.Privacy.AuditLog, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600); err != nil {
				return nil, usageError{fmt.Errorf("privacy.audit.log: %w", err)}
			}
			opts.Log = lp.logFile
		}
		lp.trail, err = audit.Open(ctx, cfg.Privacy.AuditDB, opts)
		if err != nil {
			lp.close()
			return nil, fmt.Errorf("privacy.audit.db: %w", err)
		}
		lp.rec = audit.Record{Principal: localUser(), Roles: c.Roles, Client: "local:" + hostname(), Dataset: d.Name,
			Purpose: audit.Purpose{Category: strings.TrimSpace(c.Purpose), Text: strings.TrimSpace(c.PurposeText)}, Columns: c.Columns}
		params := map[string]string{}
		for _, kv := range c.Param {
			k, v, _ := strings.Cut(kv, "=")
			if params[k] != "" {
				v = params[k] + "," + v
			}
			params[k] = v
		}
		lp.rec.Params, _ = json.Marshal(params)
		if f, err := c.format(); err == nil {
			lp.rec.Format = string(f)
		}
		if err := lp.check(c, cfg); err != nil {
			lp.rec.Outcome, lp.rec.Error = audit.OutcomeDenied, err.Error()
			if aerr := lp.trail.Append(ctx, &lp.rec); aerr != nil {
				err = errors.Join(err, fmt.Errorf("audit: %w", aerr))
			}
			lp.close()
			return nil, usageError{err}
		}
		return lp, nil
	}
	if len(c.Columns) == 0 {
		return lp, nil // marking only
	}
	pol, err := mask.PolicyFor(d)
	if err != nil {
		return nil, usageError{err}
	}
	if lp.plan, err = pol.Plan(c.Roles, d.Columns, c.Columns); err != nil {
		return nil, usageError{fmt.Errorf("--columns: %w", err)}
	}
	lp.planned = true
	return lp, nil
}

// check applies the rules of a personal dataset and makes the plan.
func (lp *localPrivacy) check(c *exportCmd, cfg *exportd.Config) error {
	if err := cfg.Privacy.CheckPurpose(lp.rec.Purpose.Category, lp.rec.Purpose.Text); err != nil {
		var pe *exportd.PurposeError
		if errors.As(err, &pe) {
			flag := map[string]string{"purpose": "--purpose", "purpose_text": "--purpose-text"}[pe.Field]
			return fmt.Errorf("%s: %s", flag, pe.Reason)
		}
		return err
	}
	if len(c.Roles) == 0 {
		return fmt.Errorf("--roles: dataset %s holds personal data: name the roles whose masking applies (e.g. --roles admin); the command assumes none", lp.d.Name)
	}
	pol, err := mask.PolicyFor(lp.d)
	if err != nil {
		return err
	}
	if lp.plan, err = pol.Plan(c.Roles, lp.d.Columns, c.Columns); err != nil {
		return fmt.Errorf("--columns: %w", err)
	}
	lp.rec.Columns = lp.plan.Names()
	lp.planned = true
	return nil
}

// wrap applies the plan before the format writer.
func (lp *localPrivacy) wrap(newWriter func(io.Writer, []exportd.Column) (exportd.RowWriter, error)) func(io.Writer, []exportd.Column) (exportd.RowWriter, error) {
	if lp == nil || !lp.planned {
		return newWriter
	}
	return lp.plan.NewWriter(newWriter)
}

// output returns w, hashed for the audit record when there is a trail.
func (lp *localPrivacy) output(w io.Writer) io.Writer {
	if lp == nil || lp.trail == nil {
		return w
	}
	lp.dig = &lockedDigest{d: audit.NewDigest(w)}
	return lp.dig
}

// record appends the export's record (before the file is put in place).
func (lp *localPrivacy) record(ctx context.Context, st exportd.Stats, exportErr error) error {
	if lp == nil || lp.trail == nil {
		return nil
	}
	lp.rec.Rows = st.Rows
	lp.rec.SHA256, lp.rec.Bytes = lp.dig.sum()
	lp.rec.Outcome = audit.OutcomeOf(exportErr)
	if exportErr != nil {
		lp.rec.Error = exportErr.Error()
	}
	if err := lp.trail.Append(context.WithoutCancel(ctx), &lp.rec); err != nil {
		return fmt.Errorf("audit: %w (the file was not written)", err)
	}
	return nil
}

func (lp *localPrivacy) close() {
	if lp == nil {
		return
	}
	if lp.trail != nil {
		lp.trail.Close()
	}
	if lp.logFile != nil {
		lp.logFile.Close()
	}
}

// lockedDigest is an audit.Digest safe for the XLSX writer's goroutine and
// the export's flushes.
type lockedDigest struct {
	mu sync.Mutex
	d  *audit.Digest
}

func (w *lockedDigest) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.d.Write(p)
}

func (w *lockedDigest) sum() (string, int64) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.d.Sum(), w.d.N()
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
