package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"text/tabwriter"

	"github.com/exportd/exportd/datasets"

	"github.com/exportd/exportd/auth"
)

type tokenCmd struct {
	Create tokenCreateCmd `cmd:"" help:"Create an API token for a principal and print it (once: only its hash is kept)."`
	List   tokenListCmd   `cmd:"" help:"List the API tokens (never the tokens themselves)."`
	Revoke tokenRevokeCmd `cmd:"" help:"Revoke an API token by its id; it is refused at once."`
}

// tokenStoreFlags names the token database: the datasets file's
// auth.tokens_db, or --db.
type tokenStoreFlags struct {
	Config string `help:"Datasets file whose auth.tokens_db holds the tokens (default: exportd-auth.db beside it)." type:"path" placeholder:"FILE"`
	DB     string `help:"Token database instead: sqlite:PATH or postgres://…." placeholder:"URL"`
}

func (f tokenStoreFlags) open(ctx context.Context) (*auth.Store, error) {
	u := f.DB
	if u == "" {
		if f.Config == "" {
			return nil, usageError{errors.New("give --config FILE (the datasets file) or --db URL")}
		}
		cfg, err := datasets.LoadConfig(f.Config)
		if err != nil {
			return nil, usageError{err}
		}
		u = cfg.Auth.TokensDB
	} else if !strings.Contains(u, "://") && !strings.HasPrefix(u, "sqlite:") {
		u = "sqlite:" + u
	}
	return auth.OpenStore(ctx, u)
}

type tokenCreateCmd struct {
	tokenStoreFlags
	Name  string   `help:"The principal's name (owns its jobs, appears in the audit log)." required:""`
	Roles []string `help:"Its roles, comma-separated." sep:","`
	Attr  []string `help:"An attribute for pinned parameters, KEY=VALUE (repeatable), e.g. branch=부산." placeholder:"KEY=VALUE"`
}

func (c *tokenCreateCmd) Run(ctx context.Context) error {
	attrs := map[string]string{}
	for _, a := range c.Attr {
		k, v, ok := strings.Cut(a, "=")
		if !ok || k == "" {
			return usageError{fmt.Errorf("--attr %q: want KEY=VALUE", a)}
		}
		attrs[k] = v
	}
	s, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	tok, id, err := s.Create(ctx, c.Name, c.Roles, attrs)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "token %s for %s (roles: %s); it is shown only now:\n", id, c.Name, strings.Join(c.Roles, ","))
	fmt.Println(tok)
	return nil
}

type tokenListCmd struct {
	tokenStoreFlags
}

func (c *tokenListCmd) Run(ctx context.Context) error {
	s, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	list, err := s.List(ctx)
	if err != nil {
		return err
	}
	w := tabwriter.NewWriter(os.Stdout, 0, 4, 2, ' ', 0)
	fmt.Fprintln(w, "ID\tNAME\tROLES\tATTRS\tCREATED\tREVOKED")
	for _, t := range list {
		keys := make([]string, 0, len(t.Attrs))
		for k := range t.Attrs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		attrs := make([]string, len(keys))
		for i, k := range keys {
			attrs[i] = k + "=" + t.Attrs[k]
		}
		revoked := "-"
		if !t.RevokedAt.IsZero() {
			revoked = t.RevokedAt.Format("2006-01-02 15:04")
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", t.ID, t.Name, strings.Join(t.Roles, ","), strings.Join(attrs, ","),
			t.CreatedAt.Format("2006-01-02 15:04"), revoked)
	}
	return w.Flush()
}

type tokenRevokeCmd struct {
	tokenStoreFlags
	ID string `arg:"" help:"The token's id (see token list)."`
}

func (c *tokenRevokeCmd) Run(ctx context.Context) error {
	s, err := c.open(ctx)
	if err != nil {
		return err
	}
	defer s.Close()
	if err := s.Revoke(ctx, c.ID); err != nil {
		if errors.Is(err, auth.ErrUnknownToken) {
			return usageError{err}
		}
		return err
	}
	fmt.Fprintf(os.Stderr, "token %s revoked\n", c.ID)
	return nil
}
