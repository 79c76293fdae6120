package faults

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/exportd/exportd/sourcetest"
)

// /readyz reflects the job queue's database as well as the sources': with
// the queue on a PostgreSQL server that stops, it answers 503 naming the
// queue (no job can be submitted, followed or run), and 200 once the
// server is back.
func TestReadyzJobQueue(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a private PostgreSQL server")
	}
	src := sourcetest.IntegrationURL(t, "EXPORTD_POSTGRES_URL")
	queue := startPostgres(t)
	r := startRig(t, src, "datasets:\n  small:\n    sql: SELECT 1 AS n\n    columns: [{name: n, type: int}]\n", queue.URL)
	ready := func() (int, map[string]any) {
		t.Helper()
		code, b, err := r.fetch(t, "/readyz")
		var body map[string]any
		if err != nil || json.Unmarshal(b, &body) != nil {
			t.Fatalf("/readyz: %d %q %v", code, b, err)
		}
		return code, body
	}
	if code, body := ready(); code != 200 || body["jobs_queue"] != "ok" {
		t.Fatalf("/readyz before the fault: %d %v", code, body)
	}
	queue.Stop()
	code, body := ready()
	if code != 503 || body["jobs_queue"] == "ok" || body["connections"].(map[string]any)["db"] != "ok" {
		t.Fatalf("/readyz with the queue's database down: %d %v", code, body)
	}
	t.Logf("/readyz with the queue's database down: %d %v", code, body)
	queue.Start()
	took := waitFor(t, 10*time.Second, "/readyz 200 after the queue's database is back", func() bool {
		code, _ := ready()
		return code == 200
	})
	t.Logf("/readyz 200 %v after the queue's database was back", took.Round(time.Millisecond))
}
