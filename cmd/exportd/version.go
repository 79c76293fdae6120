package main

import (
	"fmt"
	"io"
	"os"

	"github.com/exportd/exportd/internal/buildinfo"
)

type versionCmd struct{}

// Run prints the build: the module version, the revision and time it was
// built from (a `go build` in a git checkout records them) and the Go
// version.
func (versionCmd) Run() error { return printVersion(os.Stdout, buildinfo.Read()) }

func printVersion(w io.Writer, i buildinfo.Info) error {
	fmt.Fprintf(w, "exportd %s\n", i.Version)
	if i.Revision != "" {
		mod := ""
		if i.Modified {
			mod = " (modified: built with uncommitted changes)"
		}
		fmt.Fprintf(w, "  revision %s%s\n", i.Revision, mod)
	}
	if i.Time != "" {
		fmt.Fprintf(w, "  time     %s\n", i.Time)
	}
	_, err := fmt.Fprintf(w, "  go       %s %s\n", i.Go, i.Platform)
	return err
}
