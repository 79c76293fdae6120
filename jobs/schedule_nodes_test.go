package jobs_test

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/jobs"
)

// receiver is a webhook receiver that counts the deliveries of each job.
type receiver struct {
	*httptest.Server
	mu     sync.Mutex
	byJob  map[string]int
	status int // answered; 0 means 204
}

func newReceiver(t *testing.T, status int) *receiver {
	r := &receiver{byJob: map[string]int{}, status: status}
	r.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		var p jobs.WebhookPayload
		b, _ := io.ReadAll(req.Body)
		json.Unmarshal(b, &p)
		r.mu.Lock()
		r.byJob[p.JobID]++
		r.mu.Unlock()
		w.WriteHeader(max(r.status, 204))
	}))
	t.Cleanup(r.Close)
	return r
}

func (r *receiver) count(job string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.byJob[job]
}

func (r *receiver) total() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, c := range r.byJob {
		n += c
	}
	return n
}

// TestScheduleOncePerTick: two nodes on one PostgreSQL queue run a tick
// once. The same tick inserted by both (a new leader, a catch-up racing
// the tick) is one job; a second job for the tick made from another
// version of the datasets file is refused by the tick's claim; and the
// periodic job, fired by the leader only, runs each minute's tick once.
func TestScheduleOncePerTick(t *testing.T) {
	pg := os.Getenv("EXPORTD_POSTGRES_URL")
	if pg == "" {
		if os.Getenv("EXPORTD_REQUIRE_INTEGRATION") == "1" {
			t.Fatal("EXPORTD_POSTGRES_URL is not set")
		}
		t.Skip("EXPORTD_POSTGRES_URL is not set")
	}
	rcv := newReceiver(t, 0)
	// A yearly schedule whose next tick the nodes insert themselves, and
	// one every minute for the periodic job.
	mk := func(format exportd.Format) []*exportd.Schedule {
		return []*exportd.Schedule{{Dataset: "sales", Name: "yearly", Cron: "0 0 1 1 *", Format: format,
			Params: map[string][]string{"from": {"2024-11-01"}, "to": {"2024-11-30"}},
			Owner:  exportd.ScheduleOwner{Name: "kim"}, Webhooks: []string{rcv.URL}},
			{Dataset: "sales", Name: "minutely", Cron: "* * * * *", Format: format,
				Params: map[string][]string{"from": {"2024-11-01"}, "to": {"2024-11-30"}},
				Owner:  exportd.ScheduleOwner{Name: "lee"}, Webhooks: []string{rcv.URL}}}
	}
	queueURL := pgSchemaURL(t, pg)
	results := t.TempDir()
	a := startSched(t, schedFixture(t, mk(exportd.FormatCSV)...), queueURL, results, func(c *jobs.Config) { c.NodeID = "node-a" })
	b := startSched(t, schedFixture(t, mk(exportd.FormatCSV)...), queueURL, results, func(c *jobs.Config) { c.NodeID = "node-b" })
	ctx := context.Background()

	// Both nodes insert one tick at once: one job.
	tick := a.m.NextRun("sales/yearly")
	type ins struct {
		id  int64
		dup bool
		err error
	}
	res := make(chan ins, 2)
	for _, e := range []*schedEnv{a, b} {
		go func() {
			id, dup, err := e.m.InsertTick(ctx, "sales/yearly", tick)
			res <- ins{id, dup, err}
		}()
	}
	r1, r2 := <-res, <-res
	if r1.err != nil || r2.err != nil || r1.dup == r2.dup || r1.id != r2.id {
		t.Fatalf("two inserts of one tick: %+v %+v (want one job, one duplicate)", r1, r2)
	}
	j := a.wait(t, strconv.FormatInt(r1.id, 10))
	if j.State != jobs.StateSucceeded || j.Rows != novemberRows {
		t.Fatalf("tick's job: %s %d rows %s", j.State, j.Rows, j.Error)
	}
	if last, ok, err := a.q.LastTick(ctx, "sales/yearly"); err != nil || !ok || !last.Equal(tick) {
		t.Fatalf("last tick %v %v %v, want %v", last, ok, err, tick)
	}

	// A node with another version of the file (XLSX) makes another job
	// for the same tick: it is not run.
	c := startSched(t, schedFixture(t, mk(exportd.FormatXLSX)...), queueURL, results, func(c *jobs.Config) { c.NodeID = "node-c" })
	id, dup, err := c.m.InsertTick(ctx, "sales/yearly", tick)
	if err != nil || dup {
		t.Fatalf("insert from another file: %v dup=%v", err, dup)
	}
	if j := c.wait(t, strconv.FormatInt(id, 10)); j.State != jobs.StateCancelled {
		t.Fatalf("a second job of a tick: %s, want cancelled", j.State)
	}
	if n := rcv.count(j.ID) + rcv.count(strconv.FormatInt(id, 10)); n != 1 {
		t.Fatalf("%d deliveries of one tick, want 1", n)
	}

	if testing.Short() {
		return
	}
	// The periodic job: the next minute's tick, fired by the leader of
	// the three nodes, runs once.
	next := time.Now().Truncate(time.Minute).Add(time.Minute)
	deadline := next.Add(45 * time.Second)
	var runs []*jobs.Job
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		list, err := a.m.List(ctx, "schedule:lee")
		if err != nil {
			t.Fatal(err)
		}
		runs = runs[:0]
		for _, j := range list {
			if j.Tick != nil && j.Tick.Equal(next) && !j.Manual {
				runs = append(runs, j)
			}
		}
		if len(runs) > 0 && runs[0].Final() && time.Now().After(next.Add(5*time.Second)) {
			break
		}
	}
	if len(runs) != 1 || runs[0].State != jobs.StateSucceeded {
		t.Fatalf("tick %v: %d jobs %+v, want one that succeeded", next, len(runs), runs)
	}
	if n := rcv.count(runs[0].ID); n != 1 {
		t.Fatalf("the tick's job delivered %d times", n)
	}
}

// TestScheduleMissedRun: a node comes back after every node was down over
// three monthly ticks: the last of them runs once, not once per tick; a
// restart after that runs nothing.
func TestScheduleMissedRun(t *testing.T) {
	rcv := newReceiver(t, 0)
	s := &exportd.Schedule{Dataset: "sales", Name: "monthly", Cron: "30 0 1 * *",
		Params: map[string][]string{"from": {"start of last month"}, "to": {"end of last month"}},
		Owner:  exportd.ScheduleOwner{Name: "kim"}, Webhooks: []string{rcv.URL}}
	f := schedFixture(t, s)
	queueURL := "sqlite:" + filepath.Join(t.TempDir(), "jobs.db")
	results := t.TempDir()
	ctx := context.Background()
	now := time.Now()
	prev := s.Prev(now)
	old := s.Prev(prev.AddDate(0, -3, 0))
	q, err := jobs.OpenQueue(ctx, queueURL)
	if err != nil {
		t.Fatal(err)
	}
	if err := q.SetLastTick(ctx, "sales/monthly", old); err != nil {
		t.Fatal(err)
	}
	q.Close()

	e := startSched(t, f, queueURL, results)
	var list []*jobs.Job
	deadline := time.Now().Add(30 * time.Second)
	for {
		list, err = e.m.List(ctx, "schedule:kim")
		if err != nil {
			t.Fatal(err)
		}
		if len(list) > 0 && list[0].Final() || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if len(list) != 1 || list[0].State != jobs.StateSucceeded || !list[0].Tick.Equal(prev) || list[0].Manual {
		t.Fatalf("after three missed ticks: %d jobs %+v, want one succeeded for %v", len(list), list, prev)
	}
	if from, want := list[0].Params["from"][0], prev.In(seoul(t)).AddDate(0, -1, 0).Format("2006-01")+"-01"; from != want {
		t.Errorf("the missed run's from = %s, want %s (last month of its tick)", from, want)
	}
	if last, _, _ := e.q.LastTick(ctx, "sales/monthly"); !last.Equal(prev) {
		t.Errorf("last tick %v, want %v", last, prev)
	}

	// A restart now has nothing to catch up.
	e2 := startSched(t, f, queueURL, results)
	time.Sleep(time.Second)
	if list, _ := e2.m.List(ctx, "schedule:kim"); len(list) != 1 {
		t.Fatalf("after a restart: %d jobs, want still 1", len(list))
	}
	if rcv.total() != 1 {
		t.Fatalf("%d deliveries, want 1", rcv.total())
	}
}

// TestSchedulePersonalAudit: a personal dataset's schedule states its
// standing purpose; its run (started, outcome) and each delivery
// (delivered, undelivered) are records of the trail, which verifies.
func TestSchedulePersonalAudit(t *testing.T) {
	ok := newReceiver(t, 0)
	refuse := newReceiver(t, http.StatusForbidden)
	closed := "http://" + freeAddr(t) + "/hook?token=TOKEN-NOT-SHOWN" // nothing listens
	s := &exportd.Schedule{Dataset: "members", Name: "weekly", Cron: "0 9 * * 1",
		Params:  map[string][]string{"from": {"start of last week"}, "to": {"end of last week"}},
		Owner:   exportd.ScheduleOwner{Name: "kim", Roles: []string{"manager"}},
		Purpose: "audit", PurposeText: "주간 회원 변동 점검 (정기)", Webhooks: []string{ok.URL, refuse.URL + "/hook?token=TOKEN-NOT-SHOWN", closed}}
	f := schedFixture(t, s)
	d, _ := f.cfg.Lookup("members")

	// What check refuses in such a schedule.
	bad := *s
	bad.Purpose, bad.Attach, bad.Owner.Roles = "", true, []string{"clerk"}
	fields := map[string]bool{}
	for _, p := range bad.Validate(f.cfg, d, time.Now()) {
		fields[p.Field] = true
	}
	for _, want := range []string{"purpose", "attach", "owner.roles"} {
		if !fields[want] {
			t.Errorf("Validate does not refuse %s: %v", want, fields)
		}
	}

	e := startSched(t, f, "sqlite:"+filepath.Join(t.TempDir(), "jobs.db"), t.TempDir())
	ctx := context.Background()
	j, _, err := e.m.RunSchedule(ctx, "members", "weekly", time.Date(2024, 11, 11, 9, 0, 0, 0, seoul(t)))
	if err != nil {
		t.Fatal(err)
	}
	j = e.wait(t, j.ID)
	if j.State != jobs.StateSucceeded || j.Rows != 7*75 {
		t.Fatalf("job %s %d rows (want %d) %s", j.State, j.Rows, 7*75, j.Error)
	}
	if len(j.Deliveries) != 3 || !j.Deliveries[0].OK || j.Deliveries[1].OK || j.Deliveries[1].Attempts != 1 || j.Deliveries[1].Status != 403 ||
		j.Deliveries[2].OK || j.Deliveries[2].Attempts != 4 {
		t.Fatalf("deliveries %+v (want one delivered, one refused at once, one unreachable after 4 tries)", j.Deliveries)
	}
	for _, d := range j.Deliveries {
		if strings.Contains(d.To+d.Error, "TOKEN") {
			t.Errorf("a delivery shows the webhook's token: %+v", d)
		}
	}
	var recs []audit.Record
	if err := e.trail.Records(ctx, time.Time{}, time.Now().Add(time.Hour), func(r *audit.Record) error {
		recs = append(recs, *r)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	if len(recs) != 5 {
		t.Fatalf("%d records, want started, ok, delivered, undelivered ×2: %+v", len(recs), recs)
	}
	want := []audit.Outcome{audit.OutcomeStarted, audit.OutcomeOK, audit.OutcomeDelivered, audit.OutcomeUndelivered, audit.OutcomeUndelivered}
	for i, r := range recs {
		if r.Outcome != want[i] || r.Principal != "schedule:kim" || r.Dataset != "members" || r.Purpose.Category != "audit" ||
			r.Purpose.Text != "주간 회원 변동 점검 (정기)" {
			t.Errorf("record %d: %+v", i, r)
		}
	}
	if recs[1].Ref != recs[0].Seq || recs[1].Rows != 7*75 || recs[1].SHA256 != j.SHA256 {
		t.Errorf("outcome record %+v", recs[1])
	}
	if recs[2].Client != "webhook:"+ok.URL || recs[2].SHA256 != j.SHA256 || recs[3].Client != "webhook:"+refuse.URL ||
		recs[3].Error != "webhook answered 403 Forbidden" || !strings.Contains(recs[4].Error, "connection refused") ||
		strings.Contains(recs[4].Client+recs[4].Error, "TOKEN") {
		t.Errorf("delivery records %+v %+v %+v", recs[2], recs[3], recs[4])
	}
	var params map[string]string
	json.Unmarshal(recs[2].Params, &params)
	if params["from"] != "2024-11-04" || params["to"] != "2024-11-10" {
		t.Errorf("the delivery's params %v, want last week", params)
	}
	sum, err := e.trail.Verify(ctx)
	if err != nil || len(sum.StartedWithoutOutcome) != 0 {
		t.Fatalf("verify: %v %+v", err, sum)
	}
}

// TestScheduleReload: a reloaded datasets file replaces the schedules: a
// removed one is unknown (its queued ticks fail), an added one is listed
// with its next run.
func TestScheduleReload(t *testing.T) {
	rcv := newReceiver(t, 0)
	mk := func(name string) *exportd.Schedule {
		return &exportd.Schedule{Dataset: "sales", Name: name, Cron: "0 9 * * 1",
			Params: map[string][]string{"from": {"start of last week"}, "to": {"end of last week"}},
			Owner:  exportd.ScheduleOwner{Name: "kim"}, Webhooks: []string{rcv.URL}}
	}
	f := schedFixture(t, mk("weekly"))
	e := startSched(t, f, "sqlite:"+filepath.Join(t.TempDir(), "jobs.db"), t.TempDir())
	ctx := context.Background()
	g := schedFixture(t, mk("mondays"))
	e.m.Reload(g.cfg, f.sources)
	list, err := e.m.Schedules(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 1 || list[0].Name != "mondays" || list[0].NextRun.Weekday() != time.Monday {
		t.Fatalf("after the reload: %+v", list)
	}
	if _, _, err := e.m.RunSchedule(ctx, "sales", "weekly", time.Time{}); !errors.Is(err, jobs.ErrUnknownSchedule) {
		t.Fatalf("the removed schedule: %v", err)
	}
	j, _, err := e.m.RunSchedule(ctx, "sales", "mondays", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if j = e.wait(t, j.ID); j.State != jobs.StateSucceeded {
		t.Fatalf("the added schedule's run: %s %s", j.State, j.Error)
	}
}

// TestScheduleKeep: a schedule's keep: outlasts the server's result TTL
// (the file, its link and the job's state), and then the sweep deletes it.
func TestScheduleKeep(t *testing.T) {
	rcv := newReceiver(t, 0)
	s := &exportd.Schedule{Dataset: "sales", Name: "kept", Cron: "0 9 * * 1", Keep: 3 * time.Hour,
		Params: map[string][]string{"from": {"2024-11-01"}, "to": {"2024-11-30"}},
		Owner:  exportd.ScheduleOwner{Name: "kim"}, Webhooks: []string{rcv.URL}}
	f := schedFixture(t, s)
	e := startSched(t, f, "sqlite:"+filepath.Join(t.TempDir(), "jobs.db"), t.TempDir()) // ResultTTL 1 h
	ctx := context.Background()
	j, _, err := e.m.RunSchedule(ctx, "sales", "kept", time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	j = e.wait(t, j.ID)
	if j.State != jobs.StateSucceeded || j.ExpiresAt == nil || j.ExpiresAt.Sub(*j.FinishedAt) < 2*time.Hour+55*time.Minute {
		t.Fatalf("job %s expires %v (finished %v)", j.State, j.ExpiresAt, j.FinishedAt)
	}
	if n, err := e.m.Sweep(ctx, time.Now().Add(2*time.Hour)); err != nil || n != 0 {
		t.Fatalf("sweep after 2 h: %d deleted, %v", n, err)
	}
	if j, _ := e.m.ScheduleJob(ctx, j.ID); j.State != jobs.StateSucceeded || j.DownloadURL == "" {
		t.Fatalf("after 2 h: %s %q", j.State, j.DownloadURL)
	}
	if n, err := e.m.Sweep(ctx, time.Now().Add(4*time.Hour)); err != nil || n != 1 {
		t.Fatalf("sweep after 4 h: %d deleted, %v", n, err)
	}
	if j, _ := e.m.ScheduleJob(ctx, j.ID); j.State != jobs.StateExpired {
		t.Fatalf("after 4 h: %s", j.State)
	}
}
