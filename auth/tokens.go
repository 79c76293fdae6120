package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"database/sql"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	_ "github.com/jackc/pgx/v5/stdlib" // PostgreSQL token stores
	_ "modernc.org/sqlite"             // SQLite token stores
)

// Store holds API tokens in SQLite or PostgreSQL: for each token its
// public id, the principal it stands for and the SHA-256 of its secret
// part. A token is shown once, when created; the store cannot give it
// back. Every [Store.Lookup] reads the database, so a revocation by
// another process takes effect at once.
type Store struct {
	db       *sql.DB
	postgres bool
}

// TokenInfo describes a stored token (never the token itself).
type TokenInfo struct {
	ID        string
	Name      string
	Roles     []string
	Attrs     map[string]string
	CreatedAt time.Time
	RevokedAt time.Time // zero while the token is valid
}

// ErrUnknownToken is returned (wrapped) by [Store.Revoke] for an id the
// store does not hold.
var ErrUnknownToken = errors.New("unknown token")

// tokenPrefix starts every token, so that one is recognised in a leak.
const tokenPrefix = "exd_"

// OpenStore opens (and creates, the first time) the token store at url:
// sqlite:PATH or postgres://….
func OpenStore(ctx context.Context, url string) (*Store, error) {
	var (
		db  *sql.DB
		err error
		s   = &Store{}
	)
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		s.postgres = true
		db, err = sql.Open("pgx", url)
	case strings.HasPrefix(url, "sqlite:"):
		path := strings.TrimPrefix(url, "sqlite:")
		sep := "?"
		if strings.Contains(path, "?") {
			sep = "&"
		}
		db, err = sql.Open("sqlite", path+sep+"_pragma=busy_timeout(10000)&_pragma=journal_mode(WAL)")
	default:
		return nil, fmt.Errorf("token store: want sqlite:PATH or postgres://…, got %q", url)
	}
	if err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	s.db = db
	if _, err := db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS exportd_tokens (
		id         TEXT PRIMARY KEY,
		name       TEXT NOT NULL,
		roles      TEXT NOT NULL,
		attrs      TEXT NOT NULL,
		hash       TEXT NOT NULL,
		created_at BIGINT NOT NULL,
		revoked_at BIGINT
	)`); err != nil {
		db.Close()
		return nil, fmt.Errorf("token store: %w", err)
	}
	return s, nil
}

// Close closes the store's database.
func (s *Store) Close() error { return s.db.Close() }

// q rewrites ? placeholders to PostgreSQL's $n.
func (s *Store) q(query string) string {
	if !s.postgres {
		return query
	}
	var b strings.Builder
	n := 0
	for _, c := range query {
		if c == '?' {
			n++
			fmt.Fprintf(&b, "$%d", n)
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}

// Create stores a new token for the principal name with roles and attrs
// and returns the token (shown once: only its hash is kept) and its id.
func (s *Store) Create(ctx context.Context, name string, roles []string, attrs map[string]string) (token, id string, err error) {
	if strings.TrimSpace(name) == "" {
		return "", "", errors.New("create token: empty name")
	}
	var idb [6]byte
	var secret [32]byte // 256 bits
	rand.Read(idb[:])
	rand.Read(secret[:])
	id = hex.EncodeToString(idb[:])
	sec := base64.RawURLEncoding.EncodeToString(secret[:])
	if attrs == nil {
		attrs = map[string]string{}
	}
	a, _ := json.Marshal(attrs)
	_, err = s.db.ExecContext(ctx, s.q(`INSERT INTO exportd_tokens (id, name, roles, attrs, hash, created_at) VALUES (?, ?, ?, ?, ?, ?)`),
		id, name, strings.Join(roles, ","), string(a), hashSecret(sec), time.Now().Unix())
	if err != nil {
		return "", "", fmt.Errorf("create token: %w", err)
	}
	return tokenPrefix + id + "_" + sec, id, nil
}

func hashSecret(secret string) string {
	h := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(h[:])
}

// Lookup returns the principal of a valid token (Via ViaToken), or an
// error wrapping [ErrUnauthenticated] for a malformed, unknown or revoked
// one. The token's secret is compared in constant time.
func (s *Store) Lookup(ctx context.Context, token string) (*Principal, error) {
	rest, ok := strings.CutPrefix(token, tokenPrefix)
	id, sec, ok2 := strings.Cut(rest, "_")
	if !ok || !ok2 || len(id) != 12 {
		return nil, fmt.Errorf("%w: not an exportd API token", ErrUnauthenticated)
	}
	var (
		name, roles, attrs, hash string
		revoked                  sql.NullInt64
	)
	err := s.db.QueryRowContext(ctx, s.q(`SELECT name, roles, attrs, hash, revoked_at FROM exportd_tokens WHERE id = ?`), id).
		Scan(&name, &roles, &attrs, &hash, &revoked)
	if errors.Is(err, sql.ErrNoRows) {
		// Compare anyway, so that an unknown id takes the time of a known one.
		subtle.ConstantTimeCompare([]byte(hashSecret(sec)), []byte(strings.Repeat("0", 64)))
		return nil, fmt.Errorf("%w: unknown API token", ErrUnauthenticated)
	}
	if err != nil {
		return nil, fmt.Errorf("token store: %w", err)
	}
	if subtle.ConstantTimeCompare([]byte(hashSecret(sec)), []byte(hash)) != 1 {
		return nil, fmt.Errorf("%w: unknown API token", ErrUnauthenticated)
	}
	if revoked.Valid {
		return nil, fmt.Errorf("%w: the API token %s was revoked", ErrUnauthenticated, id)
	}
	p := &Principal{Name: name, Roles: splitRoles(roles), Via: ViaToken, Attrs: map[string]string{}}
	json.Unmarshal([]byte(attrs), &p.Attrs)
	return p, nil
}

func splitRoles(s string) []string {
	var out []string
	for r := range strings.SplitSeq(s, ",") {
		if r = strings.TrimSpace(r); r != "" {
			out = append(out, r)
		}
	}
	return out
}

// Revoke revokes the token with id; revoking twice is not an error.
func (s *Store) Revoke(ctx context.Context, id string) error {
	res, err := s.db.ExecContext(ctx, s.q(`UPDATE exportd_tokens SET revoked_at = COALESCE(revoked_at, ?) WHERE id = ?`), time.Now().Unix(), id)
	if err != nil {
		return fmt.Errorf("revoke token: %w", err)
	}
	if n, _ := res.RowsAffected(); n == 0 {
		return fmt.Errorf("revoke token: %w %q", ErrUnknownToken, id)
	}
	return nil
}

// List returns every token, oldest first.
func (s *Store) List(ctx context.Context) ([]TokenInfo, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, name, roles, attrs, created_at, revoked_at FROM exportd_tokens ORDER BY created_at, id`)
	if err != nil {
		return nil, fmt.Errorf("list tokens: %w", err)
	}
	defer rows.Close()
	var out []TokenInfo
	for rows.Next() {
		var (
			t            TokenInfo
			roles, attrs string
			created      int64
			revoked      sql.NullInt64
		)
		if err := rows.Scan(&t.ID, &t.Name, &roles, &attrs, &created, &revoked); err != nil {
			return nil, fmt.Errorf("list tokens: %w", err)
		}
		t.Roles = splitRoles(roles)
		json.Unmarshal([]byte(attrs), &t.Attrs)
		t.CreatedAt = time.Unix(created, 0)
		if revoked.Valid {
			t.RevokedAt = time.Unix(revoked.Int64, 0)
		}
		out = append(out, t)
	}
	return out, rows.Err()
}
