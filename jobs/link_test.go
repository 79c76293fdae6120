package jobs_test

import (
	"context"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// signedURL returns a link to owner's job id valid until expires.
func signedURL(t *testing.T, e *env, owner, id string, expires time.Time) string {
	t.Helper()
	j, err := e.m.Get(t.Context(), owner, id)
	if err != nil {
		t.Fatal(err)
	}
	u := e.m.SignedURL(j, expires)
	if u == "" {
		t.Fatalf("job %s has no link", id)
	}
	return u
}

// A download link names a job, not a number: after the queue is emptied
// and recreated (the fix for a corrupt queue file), ids start again, and
// another user's new job with the old job's id is not opened by the old
// link (nor by the old link's job id with another signature).
func TestOldLinkOnRecreatedQueue(t *testing.T) {
	f := newFixture(t)
	for name, queue := range queues(t) {
		t.Run(name, func(t *testing.T) {
			queueURL, results := queue(t), "file://"+t.TempDir()
			var old struct{ id, link string }
			t.Run("alice's job", func(t *testing.T) {
				e := f.start(t, queueURL, results)
				j := e.submit(t, "alice", "items", map[string]any{"format": "csv", "params": map[string]any{"min": 29990}})
				e.owner = "alice"
				done := followMonotonic(t, e, j.ID, 11, nil)
				if r, b := e.do(t, "", "GET", done.DownloadURL, nil); r.StatusCode != 200 || !strings.Contains(string(b), "29990") {
					t.Fatalf("alice's link: %d %s", r.StatusCode, b)
				}
				old.id, old.link = j.ID, done.DownloadURL
			}) // the node stops
			recreate(t, queueURL)

			e := f.start(t, queueURL, results)
			e.owner = "bob"
			// bob's jobs until one has alice's old id (the queue's own
			// periodic job may take an id first)
			for i := 0; ; i++ {
				j := e.submit(t, "bob", "items", map[string]any{"format": "csv", "params": map[string]any{"min": 29980 + i}})
				done := followMonotonic(t, e, j.ID, int64(21-i), nil)
				if j.ID == old.id {
					if done.DownloadURL == old.link {
						t.Fatalf("bob's job %s has alice's old link", j.ID)
					}
					break
				}
				if mustAtoi(t, j.ID) > mustAtoi(t, old.id) {
					t.Fatalf("the recreated queue gave ids %s…, never alice's %s", j.ID, old.id)
				}
			}
			r, b := e.do(t, "", "GET", old.link, nil)
			if r.StatusCode != http.StatusForbidden || !strings.Contains(string(b), `"bad_link"`) {
				t.Fatalf("alice's old link to job %s on the recreated queue: %d, %.200s", old.id, r.StatusCode, b)
			}
		})
	}
}

// recreate empties the queue at queueURL the way an operator would: the
// SQLite file removed, the PostgreSQL schema dropped.
func recreate(t *testing.T, queueURL string) {
	t.Helper()
	if path, ok := strings.CutPrefix(queueURL, "sqlite:"); ok {
		for _, suffix := range []string{"", "-wal", "-shm"} {
			if err := os.Remove(path + suffix); err != nil && !os.IsNotExist(err) {
				t.Fatal(err)
			}
		}
		if _, err := os.Stat(filepath.Dir(path)); err != nil {
			t.Fatal(err)
		}
		return
	}
	u, err := url.Parse(queueURL)
	if err != nil {
		t.Fatal(err)
	}
	schema := u.Query().Get("river_schema")
	q := u.Query()
	q.Del("river_schema")
	u.RawQuery = q.Encode()
	conn, err := pgx.Connect(context.Background(), u.String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(context.Background(), "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE"); err != nil {
		t.Fatal(err)
	}
}
