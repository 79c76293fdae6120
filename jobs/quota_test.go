package jobs_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/exportd/exportd/jobs"
	"github.com/exportd/exportd/jobs/storage"
	"github.com/exportd/exportd/server"
	"github.com/exportd/exportd/server/servertest"
)

// startQuota starts a server with one job worker and the given quotas, on
// a SQLite queue and a local storage.
func (f *fixture) startQuota(t *testing.T, quota jobs.Quota) *env {
	t.Helper()
	ctx := context.Background()
	q, err := jobs.OpenQueue(ctx, "sqlite:"+filepath.Join(t.TempDir(), "jobs.db"))
	if err != nil {
		t.Fatal(err)
	}
	st, err := storage.Open(ctx, "file://"+t.TempDir())
	if err != nil {
		q.Close()
		t.Fatal(err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	m, err := jobs.New(jobs.Config{
		Datasets: f.cfg, Sources: f.sources,
		Queue: q, Storage: st, Links: mustKeys([]byte("0123456789abcdef0123456789abcdef")),
		Workers: 1, ResultTTL: time.Hour, ProgressInterval: 20 * time.Millisecond,
		PollInterval: 50 * time.Millisecond, Logger: log, Quota: quota,
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		c, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := m.Stop(c); err != nil {
			t.Errorf("stop: %v", err)
		}
		q.Close()
		st.Close()
	})
	srv := servertest.Start(t, server.Config{
		Datasets: f.cfg, Sources: f.sources, Logger: log, Jobs: m,
		Principal: func(r *http.Request) string { return r.Header.Get(principalHeader) },
	})
	return &env{Server: srv, f: f, m: m, store: st, owner: "alice"}
}

// quotaError is the body of a job_quota answer.
type quotaError struct {
	Error struct {
		Code, Field, Message string
		Quota                *struct {
			Name        string
			Limit, Used int64
			Counts      string
			FreesAt     *time.Time `json:"frees_at"`
		}
	}
}

// A principal at its quota of jobs in flight gets 429 naming the quota,
// while another principal's first job is accepted and runs before the
// first principal's queued ones.
func TestJobQuotaAndFairOrder(t *testing.T) {
	e := newFixture(t).startQuota(t, jobs.Quota{Jobs: 3})
	// alice's first job never ends by itself: it holds the only worker.
	endless := e.submit(t, "alice", "endless", map[string]any{"format": "csv"})
	waitState(t, e, "alice", endless.ID, jobs.StateRunning)
	a2 := e.submit(t, "alice", "items", map[string]any{"format": "csv", "params": map[string]any{"min": 2}})
	a3 := e.submit(t, "alice", "items", map[string]any{"format": "csv", "params": map[string]any{"min": 3}})

	resp, b := e.do(t, "alice", "POST", "/v1/datasets/items/jobs", map[string]any{"format": "csv", "params": map[string]any{"min": 4}})
	var qe quotaError
	json.Unmarshal(b, &qe)
	if resp.StatusCode != http.StatusTooManyRequests || qe.Error.Code != "job_quota" || qe.Error.Field != "jobs" || qe.Error.Quota == nil ||
		qe.Error.Quota.Limit != 3 || qe.Error.Quota.Used != 3 || qe.Error.Quota.Counts == "" {
		t.Fatalf("fourth job of alice: %d %s", resp.StatusCode, b)
	}

	b1 := e.submit(t, "bob", "items", map[string]any{"format": "csv", "params": map[string]any{"min": 5}})
	e.cancel(t, "alice", endless)
	bob := waitState(t, e, "bob", b1.ID, jobs.StateSucceeded)
	second := waitState(t, e, "alice", a2.ID, jobs.StateSucceeded)
	third := waitState(t, e, "alice", a3.ID, jobs.StateSucceeded)
	if !bob.StartedAt.Before(*second.StartedAt) || !second.StartedAt.Before(*third.StartedAt) {
		t.Errorf("started: bob %v, alice's second %v, third %v; want bob's first before alice's queued jobs",
			bob.StartedAt, second.StartedAt, third.StartedAt)
	}
	// Below the quota again: alice may submit.
	e.submit(t, "alice", "items", map[string]any{"format": "csv", "params": map[string]any{"min": 4}})
}

// A principal whose results kept reach the bytes quota gets 429 naming
// it and when it frees (the oldest result's expiry).
func TestJobQuotaBytes(t *testing.T) {
	e := newFixture(t).startQuota(t, jobs.Quota{Bytes: 1})
	j := e.submit(t, "alice", "items", map[string]any{"format": "csv", "params": map[string]any{"min": 29990}})
	done := waitState(t, e, "alice", j.ID, jobs.StateSucceeded)
	resp, b := e.do(t, "alice", "POST", "/v1/datasets/items/jobs", map[string]any{"format": "csv", "params": map[string]any{"min": 1}})
	var qe quotaError
	json.Unmarshal(b, &qe)
	if resp.StatusCode != http.StatusTooManyRequests || qe.Error.Field != "bytes" || qe.Error.Quota == nil || qe.Error.Quota.FreesAt == nil ||
		!qe.Error.Quota.FreesAt.Equal(*done.ExpiresAt) || resp.Header.Get("Retry-After") == "" {
		t.Fatalf("over the bytes quota: %d Retry-After %q %s", resp.StatusCode, resp.Header.Get("Retry-After"), b)
	}
	e.submit(t, "bob", "items", map[string]any{"format": "csv", "params": map[string]any{"min": 1}})
}

// waitState polls a job until it reaches state, at most 60 s.
func waitState(t *testing.T, e *env, who, id, state string) jobs.Job {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		resp, b := e.do(t, who, "GET", "/v1/jobs/"+id, nil)
		var j jobs.Job
		if err := json.Unmarshal(b, &j); err != nil || resp.StatusCode != 200 {
			t.Fatalf("job %s: %d %s", id, resp.StatusCode, b)
		}
		if j.State == state {
			return j
		}
		if time.Now().After(deadline) {
			t.Fatalf("job %s: %s after 60 s, want %s", id, j.State, state)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
