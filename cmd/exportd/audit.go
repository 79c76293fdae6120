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

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
)

type auditCmd struct {
	Verify auditVerifyCmd `cmd:"" help:"Check every record of the audit trail; exit 1 naming each problem (edited, missing, duplicated, forked, past the head). Lists exports started without an outcome record (exit 0)."`
	Export auditExportCmd `cmd:"" help:"Write the review file of the audit records of a period (e.g. a month); refuses a trail that does not verify."`
}

type auditVerifyCmd struct {
	DB      string   `help:"Audit database URL: sqlite:PATH or postgres://…" required:"" placeholder:"URL"`
	KeyFile string   `help:"File of the HMAC key(s): hex or base64, one a line, the newest last." required:"" type:"path" placeholder:"FILE"`
	Table   string   `help:"Table of the records." default:"exportd_audit"`
	Log     []string `help:"Log file(s) holding the records' JSON lines (privacy.audit.log, or the server's log), to find the newest records cut off; repeat for rotated files. Fails when they hold no audit record, or lines that look like one but cannot be read." type:"path" placeholder:"FILE"`
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
	var problems *audit.ChainErrors
	if errors.As(err, &problems) {
		// one line each on stdout; the error line sums them up
		for _, p := range problems.Problems {
			fmt.Println(p.Error())
		}
		if more := problems.Total - len(problems.Problems); more > 0 {
			fmt.Printf("… and %d more problems\n", more)
		}
	}
	if err != nil {
		return err
	}
	// Against the log: every file is read; one without an audit record
	// (just rotated) is fine as long as another has some.
	var logged audit.LogSummary
	for _, path := range c.Log {
		f, err := os.Open(path)
		if err != nil {
			return usageError{err}
		}
		ls, err := s.VerifyAgainstLog(ctx, f)
		f.Close()
		if err != nil && !errors.Is(err, audit.ErrNoLogRecords) {
			return fmt.Errorf("%s: %w", path, err)
		}
		logged.Logged += ls.Logged
		logged.Compared += ls.Compared
		logged.Pruned += ls.Pruned
	}
	if len(c.Log) > 0 && logged.Logged == 0 {
		return fmt.Errorf("%s: %w: nothing was compared (is it the server's log? each record is a JSON line with %s)",
			strings.Join(c.Log, ", "), audit.ErrNoLogRecords, `"msg":"export audit"`)
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
		detail += fmt.Sprintf("; the log agrees: %d logged records compared", logged.Compared)
		if logged.Pruned > 0 {
			detail += fmt.Sprintf(" (%d more logged before the checkpoint)", logged.Pruned)
		}
	}
	fmt.Printf("%d records OK%s\n", sum.Records, detail)
	printStartedWithoutOutcome(os.Stdout, sum.StartedWithoutOutcome)
	return nil
}

// printStartedWithoutOutcome lists the exports that were allowed and
// started but whose outcome is not recorded (still running, or the process
// died, or the outcome could not be written): facts for the reviewer, not
// a broken chain, so verify still exits 0.
func printStartedWithoutOutcome(w io.Writer, recs []audit.Record) {
	if len(recs) == 0 {
		return
	}
	fmt.Fprintf(w, "%d started without outcome (allowed exports whose end is not recorded: still running, or interrupted):\n", len(recs))
	for _, r := range recs {
		fmt.Fprintf(w, "  record %d started without outcome: %s %s (%s) from %s, dataset %s, %s, purpose %s: %q\n",
			r.Seq, r.Time.Format(time.RFC3339), r.Principal, strings.Join(r.Roles, ","), r.Client, r.Dataset, r.Format,
			r.Purpose.Category, r.Purpose.Text)
	}
}

type auditExportCmd struct {
	DB       string `help:"Audit database URL: sqlite:PATH or postgres://…" required:"" placeholder:"URL"`
	KeyFile  string `help:"File of the HMAC key(s), to verify the whole trail before writing its review: hex or base64, one a line, the newest last." required:"" type:"path" placeholder:"FILE"`
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
	keys, err := audit.LoadKeys(c.KeyFile)
	if err != nil {
		return usageError{err}
	}
	s, err := audit.Open(ctx, c.DB, audit.Options{Table: c.Table, Keys: keys, ReadOnly: true})
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
