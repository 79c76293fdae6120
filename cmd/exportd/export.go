package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/term"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/connect"
	"github.com/exportd/exportd/format"
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
	Columns     []string `help:"Columns to keep, comma-separated (default: every column the roles may see); can only leave columns out." sep:","`

	Background bool   `help:"Run the export as a job on a running server (exportd serve --jobs), follow its progress, then download the file (background.go)."`
	Server     string `help:"The server for --background." default:"http://127.0.0.1:8080" env:"EXPORTD_SERVER" placeholder:"URL"`
}

func (c *exportCmd) Run(ctx context.Context) error {
	if c.Background {
		return c.runBackground(ctx)
	}
	lp, err := c.localPrivacy(ctx) // purpose, masking, audit of a personal dataset
	if err != nil {
		return err
	}
	defer lp.close()
	src, q, cols, name, sheet, loc, err := c.plan(ctx)
	if err != nil {
		return err
	}
	defer src.Close()

	f, err := c.format()
	if err != nil {
		return usageError{err}
	}
	if c.Output == "" {
		c.Output = name + "." + string(f)
		if c.Dataset == "" {
			c.Output = "export." + string(f)
		}
	}

	out, commit, abort, err := openOutput(c.Output, f)
	if err != nil {
		return err
	}
	opts := format.Options{BOM: !c.NoBOM, Sheet: sheet}
	if lp != nil && lp.d.Marking {
		opts.Mark(localUser(), time.Now().In(loc))
	}
	var bar *progress
	if !c.Quiet && term.IsTerminal(int(os.Stderr.Fd())) {
		bar = newProgress(os.Stderr)
	}
	e := &exportd.Export{
		Source:  src,
		Query:   q,
		Columns: cols,
		Output:  lp.output(out),
		NewWriter: lp.wrap(func(w io.Writer, cols []exportd.Column) (exportd.RowWriter, error) {
			return format.New(f, w, cols, opts)
		}),
		Estimate: bar != nil,
	}
	if bar != nil {
		e.OnProgress = bar.update
	}
	st, err := e.Run(ctx)
	if bar != nil {
		bar.finish(exportd.Progress{Rows: st.Rows, Bytes: st.Bytes, Elapsed: st.Duration, Total: -1}, err == nil)
	}
	if aerr := lp.record(ctx, st, err); aerr != nil {
		abort()
		return errors.Join(err, aerr)
	}
	if err != nil {
		abort()
		return fmt.Errorf("export: %w", err)
	}
	if err := commit(); err != nil {
		return err
	}
	if !c.Quiet && c.Output != "-" {
		fmt.Fprintf(os.Stderr, "wrote %s: %d rows, %s in %s\n", c.Output, st.Rows, humanBytes(st.Bytes), st.Duration.Round(time.Millisecond))
	}
	return nil
}

// plan opens the source and builds the query, from --db/--query or from a
// dataset of --config.
func (c *exportCmd) plan(ctx context.Context) (src exportd.Source, q exportd.Query, cols []exportd.Column, name, sheet string, loc *time.Location, err error) {
	switch {
	case c.DB != "":
		if c.Query == "" {
			return nil, q, nil, "", "", nil, usageError{errors.New("--db needs --query")}
		}
		if c.Dataset != "" || len(c.Param) > 0 {
			return nil, q, nil, "", "", nil, usageError{errors.New("--dataset and --param need --config, not --db")}
		}
		loc, err = time.LoadLocation(c.Timezone)
		if err != nil {
			return nil, q, nil, "", "", nil, usageError{fmt.Errorf("--timezone: %w", err)}
		}
		src, err = connect.Open(ctx, c.DB, exportd.SourceOptions{Location: loc})
		if err != nil {
			return nil, q, nil, "", "", nil, err
		}
		return src, exportd.Query{SQL: c.Query}, nil, "export", "", loc, nil
	case c.Config != "":
		if c.Dataset == "" {
			return nil, q, nil, "", "", nil, usageError{errors.New("--config needs --dataset")}
		}
		if c.Query != "" {
			return nil, q, nil, "", "", nil, usageError{errors.New("--query needs --db; a dataset brings its own SQL")}
		}
		cfg, err := exportd.LoadConfig(c.Config)
		if err != nil {
			return nil, q, nil, "", "", nil, usageError{err}
		}
		d, ok := cfg.Dataset(c.Dataset)
		if !ok {
			return nil, q, nil, "", "", nil, usageError{fmt.Errorf("dataset %q: %w", c.Dataset, exportd.ErrUnknownDataset)}
		}
		raw := make(map[string][]string, len(c.Param))
		for _, kv := range c.Param {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return nil, q, nil, "", "", nil, usageError{fmt.Errorf("--param %q: want NAME=VALUE", kv)}
			}
			raw[k] = append(raw[k], v)
		}
		params, err := d.BindParams(raw, cfg.Location)
		if err != nil {
			return nil, q, nil, "", "", nil, usageError{fmt.Errorf("dataset %s: %w", d.Name, err)}
		}
		conn := cfg.Connections[d.Connection]
		src, err = connect.Open(ctx, conn.URL, exportd.SourceOptions{Location: cfg.Location})
		if err != nil {
			return nil, q, nil, "", "", nil, fmt.Errorf("connection %s: %w", d.Connection, err)
		}
		f, _ := c.format()
		fileName := d.FileNameFor(params, f)
		return src, d.Query(params), d.Columns, strings.TrimSuffix(fileName, filepath.Ext(fileName)), d.Sheet, cfg.Location, nil
	}
	return nil, q, nil, "", "", nil, usageError{errors.New("give --db URL --query SQL, or --config FILE --dataset NAME")}
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
// name beside it and renamed by commit, so a failed export never leaves a
// complete-looking file behind; abort removes the temporary file.
func openOutput(path string, f exportd.Format) (w io.Writer, commit func() error, abort func(), err error) {
	if path == "-" {
		if f == exportd.FormatXLSX && term.IsTerminal(int(os.Stdout.Fd())) {
			return nil, nil, nil, usageError{errors.New("refusing to write an XLSX file to a terminal; use -o FILE or a pipe")}
		}
		return os.Stdout, func() error { return nil }, func() {}, nil
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".partial-*")
	if err != nil {
		return nil, nil, nil, fmt.Errorf("create output: %w", err)
	}
	commit = func() error {
		if err := tmp.Sync(); err != nil {
			tmp.Close()
			os.Remove(tmp.Name())
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := tmp.Close(); err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("write %s: %w", path, err)
		}
		if err := os.Rename(tmp.Name(), path); err != nil {
			os.Remove(tmp.Name())
			return fmt.Errorf("write %s: %w", path, err)
		}
		return nil
	}
	abort = func() {
		tmp.Close()
		os.Remove(tmp.Name())
	}
	return tmp, commit, abort, nil
}
