package server

import (
	"io"
	"log/slog"
	"testing"
)

// When a slot frees, the waiting client with the fewest exports running
// gets it, even if another client's export has waited longer.
func TestAdmissionFewestRunningFirst(t *testing.T) {
	a := newAdmission(4, 0, 0, newMetrics(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	join := func(client string) *ticket {
		t.Helper()
		tk, err := a.join(client)
		if err != nil {
			t.Fatal(err)
		}
		return tk
	}
	var as []*ticket
	for range 5 {
		as = append(as, join("a")) // a1..a4 run, a5 waits
	}
	b1, b2 := join("b"), join("b") // b1 starts beyond the slots (b had nothing running), b2 waits
	c1 := join("c")                // so does c1
	for i, tk := range []*ticket{as[0], as[1], as[2], as[3], b1, c1} {
		if tk.state != running {
			t.Fatalf("export %d waits", i)
		}
	}
	if as[4].state != waiting || b2.state != waiting {
		t.Fatal("a5 or b2 runs")
	}
	c1.done()
	as[0].done() // 4 running: the headroom drains, nobody starts
	if as[4].state != waiting || b2.state != waiting {
		t.Fatal("an export started while the slots were full")
	}
	as[1].done() // 3 running: a has 2, b has 1
	if b2.state != running || as[4].state != waiting {
		t.Fatalf("b2 %v, a5 %v: want b2 (b runs fewer) before a5 (waiting longer)", b2.state, as[4].state)
	}
	if a.waitingNow() != 1 || a.active() != 5 {
		t.Fatalf("waiting %d, admitted %d", a.waitingNow(), a.active())
	}
	for _, tk := range append(as, b1, b2) {
		tk.done()
		tk.done() // a second done changes nothing
	}
	if a.active() != 0 || a.running != 0 || len(a.clients) != 0 {
		t.Fatalf("after all done: admitted %d, running %d, clients %d", a.active(), a.running, len(a.clients))
	}
}

// Background jobs hold at most half the slots, never start beyond the
// slots, are never refused, and do not count against the bound of
// downloads.
func TestAdmissionJobShare(t *testing.T) {
	a := newAdmission(4, 2, 0, newMetrics(), slog.New(slog.NewTextHandler(io.Discard, nil)))
	var jobs []*ticket
	for range 3 {
		jobs = append(jobs, a.joinJob())
	}
	if jobs[0].state != running || jobs[1].state != running || jobs[2].state != waiting {
		t.Fatalf("jobs %v %v %v: want two running (half of 4 slots), one waiting", jobs[0].state, jobs[1].state, jobs[2].state)
	}
	d1, err := a.join("a")
	if err != nil {
		t.Fatal(err)
	}
	d2, err := a.join("b")
	if err != nil {
		t.Fatalf("a second download refused with 3 jobs admitted and a bound of 2 downloads: %v", err)
	}
	if d1.state != running || d2.state != running {
		t.Fatal("a download waits while the jobs hold only their share")
	}
	if _, err := a.join("c"); err == nil {
		t.Fatal("a third download admitted beyond the bound of 2")
	}
	jobs[0].done() // 3 running: the waiting job may take the free slot
	if jobs[2].state != running {
		t.Fatal("the waiting job did not get the slot a job freed")
	}
	j4 := a.joinJob() // slots full: a job never starts beyond them
	if j4.state != waiting {
		t.Fatal("a job started beyond the slots")
	}
	for _, tk := range []*ticket{jobs[1], jobs[2], j4, d1, d2} {
		tk.done()
	}
	if a.active() != 0 || a.running != 0 || len(a.clients) != 0 {
		t.Fatalf("after all done: admitted %d, running %d, clients %d", a.active(), a.running, len(a.clients))
	}
}
