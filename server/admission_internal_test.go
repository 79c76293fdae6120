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
