package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/exportd/exportd/datasets"

	"golang.org/x/term"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/connect"
	"github.com/exportd/exportd/format"
	"github.com/exportd/exportd/internal/durable"
	"github.com/exportd/exportd/plan"
)

type exportCmd struct {
	DB       string   `help:"Database URL: postgres://…, mysql://user:pass@host:port/db, sqlite:PATH." xor:"db" placeholder:"URL"`
	Query    string   `help:"SQL to run (with --db)." placeholder:"SQL"`
	Config   string   `help:"Datasets file." xor:"db" type:"path" placeholder:"FILE"`
	Dataset  string   `help:"Dataset to export (with --config)." placeholder:"NAME"`
	Param    []string `help:"Dataset parameter; repeat for each (a list takes comma-separated values or a repeated key)." placeholder:"K=V" sep:"none"`
	Format   string   `help:"xlsx, csv, tsv or jsonl; default: from the output file's extension, else xlsx." enum:",xlsx,csv,tsv,jsonl" default:""`
	Output   string   `short:"o" help:"Output file, or - for stdout. Default: the dataset's file name, or export.<format>." placeholder:"FILE"`
	Timezone string   `help:"Zone for timestamps with a time zone (--db only; a datasets file sets its own)." default:"UTC"`
	NoBOM    bool     `help:"CSV/TSV: leave out the UTF-8 byte-order mark."`
	Quiet    bool     `short:"q" help:"No progress bar."`

	// Personal datasets (exportprivacy.go).
	Purpose     string   `help:"Purpose category of the export (one of the datasets file's privacy.purposes); required for a personal dataset." placeholder:"CATEGORY"`
	PurposeText string   `help:"The purpose in words (at least privacy.purpose_min_length characters); required for a personal dataset." placeholder:"TEXT"`
	Roles       []string `help:"Roles whose masking applies (the datasets' access: blocks); required for a personal dataset, as the command assumes none. Recorded in the audit trail with your OS user." sep:","`
	Columns     []string `help:"Columns to keep, comma-separated (default: every column the roles may see); can only leave columns out. A sheet's column is SHEET.COLUMN, or COLUMN when one sheet alone has it." sep:","`
	Sheet       []string `help:"A sheet of a dataset of several sheets to export alone; repeat for more (default: every sheet). CSV/TSV/JSONL: one sheet is a plain file, several a ZIP of one file per sheet." placeholder:"NAME" sep:"none"`

	Background bool   `help:"Run the export as a job on a running server (exportd serve --jobs), follow its progress, then download the file (background.go)."`
	Server     string `help:"The server for --background." default:"http://127.0.0.1:8080" env:"EXPORTD_SERVER" placeholder:"URL"`
}

func (c *exportCmd) Run(ctx context.Context) error {
	if c.Background {
		return c.runBackground(ctx)
	}
	f, err := c.format()
	if err != nil {
		return usageError{err}
	}
	if c.Config != "" || c.Dataset != "" {
		return c.runDataset(ctx, f)
	}
	return c.runQuery(ctx, f)
}

// runDataset exports a dataset of --config through its plan (package
// plan), as the server's stream and jobs do: the same parameters and
// roles give the same file (sheet, title, marking, masking). A personal
// dataset's export is recorded in the audit trail (exportprivacy.go): its
// record of intent before the first byte, its outcome before the file is
// put in place; when either cannot be written, no file is left behind.
func (c *exportCmd) runDataset(ctx context.Context, f exportd.Format) error {
	switch {
	case c.DB != "":
		return usageError{errors.New("--dataset needs --config, not --db")}
	case c.Config == "":
		return usageError{errors.New("--dataset needs --config")}
	case c.Dataset == "":
		return usageError{errors.New("--config needs --dataset")}
	case c.Query != "":
		return usageError{errors.New("--query needs --db; a dataset brings its own SQL")}
	}
	cfg, err := datasets.LoadConfig(c.Config)
	if err != nil {
		return usageError{err}
	}
	d, ok := cfg.Dataset(c.Dataset)
	if !ok {
		return usageError{fmt.Errorf("dataset %q: %w", c.Dataset, exportd.ErrUnknownDataset)}
	}
	raw := url.Values{}
	for _, kv := range c.Param {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return usageError{fmt.Errorf("--param %q: want NAME=VALUE", kv)}
		}
		raw[k] = append(raw[k], v)
	}
	req := plan.Request{Format: f, Params: raw, NoBOM: c.NoBOM,
		Principal: plan.Principal{Name: localUser(), Roles: c.Roles, Client: "local:" + hostname()},
		Purpose:   audit.Purpose{Category: c.Purpose, Text: c.PurposeText}}
	if len(c.Columns) > 0 {
		req.Columns = c.Columns
	}
	if len(c.Sheet) > 0 {
		req.Sheets = c.Sheet
	}
	var trail *localTrail
	if d.Personal {
		if trail, err = openLocalTrail(ctx, cfg, d); err != nil {
			return err
		}
		defer trail.close()
	}
	p, err := plan.New(cfg, d.Name, req)
	if err == nil && d.Personal && len(c.Roles) == 0 {
		err = fmt.Errorf("--roles: dataset %s holds personal data: name the roles whose masking applies (e.g. --roles admin); the command assumes none", d.Name)
	}
	if err != nil {
		err = flagError(d, err)
		if trail != nil {
			err = errors.Join(err, trail.denied(ctx, req, err))
		}
		return usageError{err}
	}

	conn := cfg.Connections[d.Connection]
	src, err := connect.Open(ctx, conn.URL, exportd.SourceOptions{Location: cfg.Location})
	if err != nil {
		return fmt.Errorf("connection %s: %w", d.Connection, err)
	}
	defer src.Close()
	// The sources of sheets on other connections.
	sources := map[string]exportd.Source{d.Connection: src}
	for _, sh := range p.Sheets {
		if _, ok := sources[sh.Connection]; ok {
			continue
		}
		s, err := connect.Open(ctx, cfg.Connections[sh.Connection].URL, exportd.SourceOptions{Location: cfg.Location})
		if err != nil {
			return fmt.Errorf("connection %s: %w", sh.Connection, err)
		}
		defer s.Close()
		sources[sh.Connection] = s
	}
	if c.Output == "" {
		c.Output = p.FileName
	}
	out, commit, abort, err := openOutput(c.Output, f)
	if err != nil {
		return err
	}
	bar := c.progressBar()
	opts := plan.Options{Source: src, Sources: sources, Output: out, Estimate: bar != nil}
	if trail != nil {
		opts.Audit = trail.store
	}
	if bar != nil {
		opts.OnProgress = bar.update
	}
	res, err := p.Run(ctx, opts)
	if bar != nil {
		bar.finish(exportd.Progress{Rows: res.Rows, Bytes: res.Bytes, Elapsed: res.Duration, Total: -1}, err == nil)
	}
	if res.AuditErr != nil {
		abort()
		return errors.Join(err, fmt.Errorf("%w (the file was not written)", res.AuditErr))
	}
	if err != nil {
		abort()
		return fmt.Errorf("export: %w", err)
	}
	if err := commit(); err != nil {
		return err
	}
	c.wrote(res.Stats)
	return nil
}

// runQuery exports the result of --query on --db: an ad-hoc query, with
// no dataset and so no plan (its columns are the result's).
func (c *exportCmd) runQuery(ctx context.Context, f exportd.Format) error {
	switch {
	case c.Purpose != "" || c.PurposeText != "" || len(c.Roles) > 0 || len(c.Columns) > 0:
		return usageError{errors.New("--purpose, --purpose-text, --roles and --columns apply to a dataset (--config and --dataset)")}
	case c.DB == "":
		return usageError{errors.New("give --db URL --query SQL, or --config FILE --dataset NAME")}
	case c.Query == "":
		return usageError{errors.New("--db needs --query")}
	case len(c.Param) > 0:
		return usageError{errors.New("--dataset and --param need --config, not --db")}
	}
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return usageError{fmt.Errorf("--timezone: %w", err)}
	}
	src, err := connect.Open(ctx, c.DB, exportd.SourceOptions{Location: loc})
	if err != nil {
		return err
	}
	defer src.Close()
	if c.Output == "" {
		c.Output = "export." + string(f)
	}
	out, commit, abort, err := openOutput(c.Output, f)
	if err != nil {
		return err
	}
	opts := format.Options{BOM: !c.NoBOM}
	bar := c.progressBar()
	e := &exportd.Export{
		Source: src,
		Query:  exportd.Query{SQL: c.Query},
		Output: out,
		NewWriter: func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
			return format.New(f, w, cols, opts)
		},
		Estimate: bar != nil,
	}
	if bar != nil {
		e.OnProgress = bar.update
	}
	st, err := e.Run(ctx)
	if bar != nil {
		bar.finish(exportd.Progress{Rows: st.Rows, Bytes: st.Bytes, Elapsed: st.Duration, Total: -1}, err == nil)
	}
	if err != nil {
		abort()
		return fmt.Errorf("export: %w", err)
	}
	if err := commit(); err != nil {
		return err
	}
	c.wrote(st)
	return nil
}

// progressBar returns the progress bar on a terminal, unless --quiet.
func (c *exportCmd) progressBar() *progress {
	if c.Quiet || !term.IsTerminal(int(os.Stderr.Fd())) {
		return nil
	}
	return newProgress(os.Stderr)
}

// wrote tells what was written, unless --quiet or the output is stdout.
func (c *exportCmd) wrote(st exportd.Stats) {
	if !c.Quiet && c.Output != "-" {
		fmt.Fprintf(os.Stderr, "wrote %s: %d rows, %s in %s\n", c.Output, st.Rows, humanBytes(st.Bytes), st.Duration.Round(time.Millisecond))
	}
}

func (c *exportCmd) format() (exportd.Format, error) {
	if c.Format != "" {
		return exportd.ParseFormat(c.Format)
	}
	if c.Output != "" && c.Output != "-" {
		if ext := strings.TrimPrefix(strings.ToLower(filepath.Ext(c.Output)), "."); ext != "" {
			if f, err := exportd.ParseFormat(ext); err == nil {
				return f, nil
			}
		}
	}
	return exportd.FormatXLSX, nil
}

// openOutput opens the destination. A file is written under a temporary
// name beside it, flushed to disk as it grows and renamed by commit (see
// internal/durable), so a failed export never leaves a complete-looking
// file behind; abort removes the temporary file. A path that is not a
// regular file (/dev/null, a named pipe, a terminal) is written in place:
// renaming over it would replace the device with a file. A symbolic link
// is followed, so the file it names is the one replaced.
func openOutput(path string, f exportd.Format) (w io.Writer, commit func() error, abort func(), err error) {
	if path == "-" {
		if f == exportd.FormatXLSX && term.IsTerminal(int(os.Stdout.Fd())) {
			return nil, nil, nil, usageError{errors.New("refusing to write an XLSX file to a terminal; use -o FILE or a pipe")}
		}
		return os.Stdout, func() error { return nil }, func() {}, nil
	}
	if real, err := filepath.EvalSymlinks(path); err == nil {
		path = real
	}
	if fi, err := os.Stat(path); err == nil && !fi.Mode().IsRegular() {
		if fi.IsDir() {
			return nil, nil, nil, usageError{fmt.Errorf("output %s is a directory", path)}
		}
		out, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("open output: %w", err)
		}
		if f == exportd.FormatXLSX && term.IsTerminal(int(out.Fd())) {
			out.Close()
			return nil, nil, nil, usageError{fmt.Errorf("refusing to write an XLSX file to a terminal (%s); use -o FILE or a pipe", path)}
		}
		commit = func() error {
			if err := out.Close(); err != nil {
				return fmt.Errorf("write %s: %w", path, err)
			}
			return nil
		}
		return out, commit, func() { out.Close() }, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create output: %w", err)
	}
	d := durable.New(tmp, path)
	return d, d.Commit, d.Abort, nil
}
