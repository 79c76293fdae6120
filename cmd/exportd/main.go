// Command exportd streams database exports as XLSX, CSV, TSV or JSON Lines.
//
//	exportd demo                                   # demo data in SQLite, ready to export
//	exportd export --db URL --query SQL -o out.xlsx
//	exportd export --config datasets.yaml --dataset NAME --param k=v -o out.xlsx
//	exportd check --config datasets.yaml
//	exportd version
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	_ "time/tzdata" // zone names work where the system has no zoneinfo

	"github.com/alecthomas/kong"
)

type cli struct {
	Serve   serveCmd   `cmd:"" help:"Serve the datasets over HTTP: streaming downloads that never time out behind a proxy."`
	Export  exportCmd  `cmd:"" help:"Export a query or a dataset to a file or stdout."`
	Check   checkCmd   `cmd:"" help:"Validate a datasets file and, with the databases reachable, each query's columns."`
	Demo    demoCmd    `cmd:"" help:"Create demo data in SQLite (once) with a datasets file, and show how to export it."`
	Version versionCmd `cmd:"" help:"Print the version."`
	Audit   auditCmd   `cmd:"" help:"Verify the personal-data export audit trail, or write its review file."`
	Token   tokenCmd   `cmd:"" help:"Create, list and revoke API tokens (Authorization: Bearer)."`
}

// usageError marks an error caused by the command line or the input files,
// which exits with status 2 rather than 1.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	var c cli
	parser := kong.Must(&c,
		kong.Name("exportd"),
		kong.Description("Stream database exports as XLSX, CSV, TSV or JSON Lines, in memory that does not grow with rows."),
	)
	k, err := parser.Parse(os.Args[1:])
	if err != nil {
		os.Exit(exitCode(usageError{err}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	k.BindTo(ctx, (*context.Context)(nil))
	err = k.Run()
	stop()
	os.Exit(exitCode(err))
}

// exitCode prints err on one line and chooses the process's exit status:
// 0 on success, 2 for bad input, 130 when interrupted, 1 otherwise.
func exitCode(err error) int {
	if err == nil {
		return 0
	}
	fmt.Fprintf(os.Stderr, "exportd: %v\n", oneLine(err.Error()))
	var ue usageError
	switch {
	case errors.As(err, &ue):
		return 2
	case errors.Is(err, context.Canceled):
		return 130
	}
	return 1
}

// oneLine joins a multi-line error (errors.Join) with "; ".
func oneLine(s string) string { return strings.ReplaceAll(s, "\n", "; ") }
