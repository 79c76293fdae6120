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
	"reflect"
	"strings"
	"syscall"
	_ "time/tzdata" // zone names work where the system has no zoneinfo

	"github.com/alecthomas/kong"
)

type cli struct {
	Serve    serveCmd    `cmd:"" help:"Serve the datasets over HTTP: streaming downloads that never time out behind a proxy."`
	Export   exportCmd   `cmd:"" help:"Export a query or a dataset to a file or stdout."`
	Check    checkCmd    `cmd:"" help:"Validate a datasets file and, with the databases reachable, each query's columns."`
	Demo     demoCmd     `cmd:"" help:"Create demo data in SQLite (once) with a datasets file, and show how to export it."`
	Version  versionCmd  `cmd:"" help:"Print the version."`
	Audit    auditCmd    `cmd:"" help:"Verify the personal-data export audit trail, or write its review file."`
	Token    tokenCmd    `cmd:"" help:"Create, list and revoke API tokens (Authorization: Bearer)."`
	Schedule scheduleCmd `cmd:"" help:"List scheduled deliveries, or run one now."`
}

// usageError marks an error caused by the command line or the input files,
// which exits with status 2 rather than 1.
type usageError struct{ err error }

func (e usageError) Error() string { return e.err.Error() }
func (e usageError) Unwrap() error { return e.err }

func main() {
	var c cli
	k, err := newParser(&c).Parse(os.Args[1:])
	if err != nil {
		os.Exit(exitCode(usageError{err}))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	k.BindTo(ctx, (*context.Context)(nil))
	err = k.Run()
	stop()
	os.Exit(exitCode(err))
}

// newParser returns the command line's parser for c: every serve flag
// also read from EXPORTD_<FLAG> (a flag on the command line wins), and
// negative numbers taken as values, not as short flags.
func newParser(c *cli) *kong.Kong {
	return kong.Must(c,
		kong.Name("exportd"),
		kong.Description("Stream database exports as XLSX, CSV, TSV or JSON Lines, in memory that does not grow with rows."),
		kong.KindMapper(reflect.Int, signedInt{kong.NewRegistry().RegisterDefaults().ForType(reflect.TypeFor[int]())}),
		envars("serve", "EXPORTD_"),
	)
}

// envars names an environment variable for every flag of the command cmd
// that has none yet: prefix and the flag's name in upper case, dashes as
// underscores (--max-exports: EXPORTD_MAX_EXPORTS). kong reads it when the
// flag is not given and shows it in the command's --help.
func envars(cmd, prefix string) kong.Option {
	return kong.PostBuild(func(k *kong.Kong) error {
		for _, n := range k.Model.Children {
			if n.Name != cmd {
				continue
			}
			for _, f := range n.Flags {
				if f.Name == "help" || len(f.Envs) > 0 {
					continue
				}
				env := prefix + strings.ToUpper(strings.ReplaceAll(f.Name, "-", "_"))
				f.Envs = []string{env}
				f.Value.Tag.Envs = []string{env}
			}
			return nil
		}
		return fmt.Errorf("envars: no command %q", cmd)
	})
}

// signedInt reads an int flag's value also when it is negative: kong takes
// "-1" after a flag for a short flag, so "--max-exports -1", which the
// help promises, was refused. A negative number is turned into a value
// token for the usual int mapper; anything else is left to it.
type signedInt struct{ kong.Mapper }

func (m signedInt) Decode(ctx *kong.DecodeContext, target reflect.Value) error {
	if t := ctx.Scan.Peek(); t.Type == kong.UntypedToken {
		if s, ok := t.Value.(string); ok && len(s) > 1 && s[0] == '-' && isDigits(s[1:]) {
			ctx.Scan.Pop()
			ctx.Scan.PushTyped(s, kong.FlagValueToken)
		}
	}
	return m.Mapper.Decode(ctx, target)
}

func isDigits(s string) bool {
	for _, r := range s {
		if r < '0' || r > '9' {
			return false
		}
	}
	return s != ""
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
