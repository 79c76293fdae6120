package main

import (
	"context"
	"fmt"
	"os"

	"github.com/exportd/exportd/datasets"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/connect"
)

type checkCmd struct {
	Config  string `help:"Datasets file." required:"" type:"path" placeholder:"FILE"`
	Offline bool   `help:"Validate the file only; do not connect to the databases."`
}

func (c *checkCmd) Run(ctx context.Context) error {
	cfg, err := datasets.LoadConfig(c.Config)
	if err != nil {
		return usageError{err}
	}
	if !c.Offline {
		errs := datasets.Check(ctx, cfg, func(ctx context.Context, conn exportd.Connection) (exportd.Source, error) {
			return connect.Open(ctx, conn.URL, exportd.SourceOptions{Location: cfg.Location})
		})
		if len(errs) > 0 {
			for _, e := range errs {
				fmt.Fprintln(os.Stderr, e)
			}
			return usageError{fmt.Errorf("%s: %d problem(s) found", c.Config, len(errs))}
		}
	}
	fmt.Printf("%s: %d dataset(s) OK\n", c.Config, len(cfg.Datasets))
	return nil
}
