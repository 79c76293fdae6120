package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
)

type auditCmd struct {
	Verify auditVerifyCmd `cmd:"" help:"Check the audit trail's chain; exit 1 naming the first broken record."`
	Export auditExportCmd `cmd:"" help:"Write the review file of the audit records of a period (e.g. a month)."`
}

type auditVerifyCmd struct {
	DB      string   `help:"Audit database URL: sqlite:PATH or postgres://…" required:"" placeholder:"URL"`
	KeyFile string   `help:"File of the HMAC key(s): hex or base64, one a line, the newest last." required:"" type:"path" placeholder:"FILE"`
	Table   string   `help:"Table of the records." default:"exportd_audit"`
	Log     []string `help:"JSON log file(s) of the records, to find the newest records cut off; repeat for rotated files." type:"path" placeholder:"FILE"`
}

func (c *auditVerifyCmd) Run(ctx context.Context) error {
	keys, err := audit.LoadKeys(c.KeyFile)
	if err != nil {
		return usageError{err}
	}
	s, err := audit.Open(ctx, c.DB, audit.Options{Table: c.Table, Keys: keys, ReadOnly: true})
	if err != nil {
		return err
	}
	defer s.Close()
	sum, err := s.Verify(ctx)
	if err != nil {
		return err
	}
	for _, path := range c.Log {
		f, err := os.Open(path)
		if err != nil {
			return usageError{err}
		}
		_, err = s.VerifyAgainstLog(ctx, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
	}
	detail := ""
	switch {
	case sum.Records > 0 && sum.Checkpoint > 0:
		detail = fmt.Sprintf(" (records %d–%d; 1–%d pruned under a signed checkpoint)", sum.First, sum.Last, sum.Checkpoint)
	case sum.Records > 0:
		detail = fmt.Sprintf(" (records %d–%d)", sum.First, sum.Last)
	case sum.Checkpoint > 0:
		detail = fmt.Sprintf(" (1–%d pruned under a signed checkpoint)", sum.Checkpoint)
	}
	if len(c.Log) > 0 {
		detail += "; the log agrees"
	}
	fmt.Printf("%d records OK%s\n", sum.Records, detail)
	return nil
}

type auditExportCmd struct {
	DB       string `help:"Audit database URL: sqlite:PATH or postgres://…" required:"" placeholder:"URL"`
	From     string `help:"First day (YYYY-MM-DD, or an RFC 3339 time)." required:"" placeholder:"DATE"`
	To       string `help:"Day after the last (exclusive), e.g. the first of the next month." required:"" placeholder:"DATE"`
	Format   string `help:"xlsx or csv; default: from the output file's extension, else xlsx." enum:",xlsx,csv" default:""`
	Output   string `short:"o" help:"Output file." required:"" placeholder:"FILE"`
	Timezone string `help:"Zone of the dates and of the times in the file (e.g. Asia/Seoul)." default:"Local"`
	Table    string `help:"Table of the records." default:"exportd_audit"`
}

func (c *auditExportCmd) Run(ctx context.Context) error {
	loc, err := time.LoadLocation(c.Timezone)
	if err != nil {
		return usageError{fmt.Errorf("--timezone: %w", err)}
	}
	from, err := parseDay(c.From, loc)
	if err != nil {
		return usageError{fmt.Errorf("--from: %w", err)}
	}
	to, err := parseDay(c.To, loc)
	if err != nil {
		return usageError{fmt.Errorf("--to: %w", err)}
	}
	if !from.Before(to) {
		return usageError{errors.New("--from must be before --to")}
	}
	f := exportd.FormatXLSX
	switch {
	case c.Format != "":
		f = exportd.Format(c.Format)
	case strings.EqualFold(filepath.Ext(c.Output), ".csv"):
		f = exportd.FormatCSV
	}
	s, err := audit.Open(ctx, c.DB, audit.Options{Table: c.Table, ReadOnly: true})
	if err != nil {
		return err
	}
	defer s.Close()
	out, commit, abort, err := openOutput(c.Output, f)
	if err != nil {
		return err
	}
	n, err := s.Export(ctx, from, to, out, f)
	if err != nil {
		abort()
		return err
	}
	if err := commit(); err != nil {
		return err
	}
	if c.Output != "-" {
		fmt.Fprintf(os.Stderr, "%s: %d records from %s to %s\n", c.Output, n, from.Format(time.DateOnly), to.Format(time.DateOnly))
	}
	return nil
}

// parseDay reads a date (midnight in loc) or an RFC 3339 time.
func parseDay(s string, loc *time.Location) (time.Time, error) {
	if t, err := time.ParseInLocation(time.DateOnly, s, loc); err == nil {
		return t, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is neither YYYY-MM-DD nor an RFC 3339 time", s)
	}
	return t.In(loc), nil
}
