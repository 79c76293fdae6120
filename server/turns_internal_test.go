package server

import (
	"context"
	"errors"
	"testing"
	"time"
)

// A freed turn goes to the waiting export that has written the fewest
// rows, whatever the order they came in.
func TestTurnsFewestRowsFirst(t *testing.T) {
	tr := newTurns(1)
	ctx := context.Background()
	hold, err := tr.take(ctx, 0, false, new(yieldBudget))
	if err != nil {
		t.Fatal(err)
	}
	order := make(chan int64, 3)
	for _, rows := range []int64{900_000, 5000, 300_000} {
		go func() {
			done, err := tr.take(ctx, rows, false, new(yieldBudget))
			if err != nil {
				t.Error(err)
				return
			}
			order <- rows
			done()
		}()
		for { // until it waits
			tr.mu.Lock()
			n := len(tr.waiters)
			waits := n > 0 && tr.waiters[n-1].rows == rows
			tr.mu.Unlock()
			if waits {
				break
			}
			time.Sleep(time.Millisecond)
		}
	}
	hold()
	var got []int64
	for range 3 {
		got = append(got, <-order)
	}
	if got[0] != 5000 || got[1] != 300_000 || got[2] != 900_000 {
		t.Errorf("turns went to %v, want the fewest rows first", got)
	}
	for { // the last one gives its turn back after it has sent
		tr.mu.Lock()
		free, waiting := tr.free, len(tr.waiters)
		tr.mu.Unlock()
		if free == 1 && waiting == 0 {
			break
		}
		time.Sleep(time.Millisecond)
	}
}

// While a young export takes turns, an old one waits even with turns free;
// it gets its turn once no young one has taken one for youngGap or it has
// waited maxWait, and it stops waiting when its context ends.
func TestTurnsYoungFirst(t *testing.T) {
	tr := newTurns(2)
	tr.youngGap = time.Hour // the young export stays active for the test…
	tr.maxWait = time.Hour  // …and the old one would wait for it that long
	done, err := tr.take(context.Background(), 10, true, new(yieldBudget))
	if err != nil {
		t.Fatal(err)
	}
	done()
	ctx, cancel := context.WithCancel(context.Background())
	got := make(chan error, 1)
	go func() {
		_, err := tr.take(ctx, 1_000_000, false, new(yieldBudget))
		got <- err
	}()
	select {
	case err := <-got:
		t.Fatalf("the old export took a turn while a young one was active (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	cancel()
	if err := <-got; !errors.Is(err, context.Canceled) {
		t.Fatalf("the old export's wait ended with %v, want its context's end", err)
	}
	// An old export waits for young ones maxWait at most.
	tr.mu.Lock()
	tr.maxWait = 0
	tr.mu.Unlock()
	done, err = tr.take(context.Background(), 1_000_000, false, new(yieldBudget))
	if err != nil {
		t.Fatal(err)
	}
	done()
	tr.mu.Lock()
	tr.maxWait, tr.youngGap = time.Hour, 0 // the young export is gone
	tr.mu.Unlock()
	done, err = tr.take(context.Background(), 1_000_000, false, new(yieldBudget))
	if err != nil {
		t.Fatal(err)
	}
	done()
	if tr.free != 2 {
		t.Errorf("%d turns free after all, want 2", tr.free)
	}
}

// An export is young for its first rows only, and for a bounded time.
func TestTurnsYoungBounded(t *testing.T) {
	tr := newTurns(1)
	take := tr.forExport().take
	done, err := take(context.Background(), 0)
	if err != nil {
		t.Fatal(err)
	}
	done()
	if tr.lastYoung.IsZero() {
		t.Fatal("an export's first batch was not young")
	}
	tr.lastYoung = time.Time{}
	done, err = take(context.Background(), youngRows)
	if err != nil {
		t.Fatal(err)
	}
	done()
	if !tr.lastYoung.IsZero() {
		t.Error("an export past youngRows rows took a young turn")
	}
}

// While a request is arriving (before its first bytes), no export takes a
// turn, young or old, even with turns free; each resumes when the last
// arriving request has its answer, or after maxWait, and stops waiting
// when its context ends.
func TestTurnsArrivalsFirst(t *testing.T) {
	tr := newTurns(2)
	tr.maxWait = time.Hour
	first, second := tr.arrive(), tr.arrive()
	got := make(chan error, 2)
	for _, young := range []bool{true, false} {
		go func() {
			done, err := tr.take(context.Background(), 10, young, new(yieldBudget))
			if err == nil {
				done()
			}
			got <- err
		}()
	}
	select {
	case err := <-got:
		t.Fatalf("an export took a turn while requests were arriving (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	first()
	first() // again: counted once
	select {
	case err := <-got:
		t.Fatalf("an export took a turn while a request was still arriving (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	second()
	for range 2 {
		select {
		case err := <-got:
			if err != nil {
				t.Fatal(err)
			}
		case <-time.After(5 * time.Second):
			t.Fatal("the exports did not resume once every request had its answer")
		}
	}

	// Bounded: a request that never arrives holds the exports maxWait.
	stuck := tr.arrive()
	defer stuck()
	tr.mu.Lock()
	tr.maxWait = 30 * time.Millisecond
	tr.mu.Unlock()
	start := time.Now()
	done, err := tr.take(context.Background(), 1_000_000, false, new(yieldBudget))
	if err != nil {
		t.Fatal(err)
	}
	done()
	if waited := time.Since(start); waited < 30*time.Millisecond || waited > 2*time.Second {
		t.Errorf("an export waited %v for an arriving request, want about maxWait (30ms)", waited)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	tr.mu.Lock()
	tr.maxWait = time.Hour
	tr.mu.Unlock()
	if _, err := tr.take(ctx, 1, false, new(yieldBudget)); !errors.Is(err, context.Canceled) {
		t.Errorf("a wait for arrivals ended with %v, want its context's end", err)
	}
	if tr.free != 2 {
		t.Errorf("%d turns free after all, want 2", tr.free)
	}
}

// What an export yields to arriving requests is bounded by its budget: a
// client that connects and sends nothing, again and again, costs the
// running exports arrivalBudget and then a share of their time at most.
func TestTurnsArrivalsBudget(t *testing.T) {
	tr := newTurns(1)
	tr.maxWait = time.Hour
	stuck := tr.arrive()
	defer stuck()
	budget := new(yieldBudget)
	start := time.Now()
	done, err := tr.take(context.Background(), 1, false, budget)
	if err != nil {
		t.Fatal(err)
	}
	done()
	if waited := time.Since(start); waited < arrivalBudget*3/4 || waited > 2*time.Second {
		t.Fatalf("the first turn waited %v for a stuck arrival, want about the budget (%v)", waited, arrivalBudget)
	}
	start = time.Now()
	for range 10 {
		done, err := tr.take(context.Background(), 1, false, budget)
		if err != nil {
			t.Fatal(err)
		}
		done()
	}
	// Each wait is a fifth of the time since the last: well below the
	// budget in all.
	if waited := time.Since(start); waited > arrivalBudget {
		t.Errorf("ten more turns waited %v for a stuck arrival with the budget spent", waited)
	}
	// Another export has its own budget; jobs share one.
	start = time.Now()
	done, err = tr.take(context.Background(), 1, false, new(yieldBudget))
	if err != nil {
		t.Fatal(err)
	}
	done()
	if waited := time.Since(start); waited < arrivalBudget*3/4 {
		t.Errorf("another export waited %v, want its own budget", waited)
	}
}

// An export with its slot starts its query after the arriving requests
// have their answers (within its budget), and stops waiting when its
// context ends.
func TestTurnsSettle(t *testing.T) {
	tr := newTurns(1)
	e := tr.forExport()
	if err := e.settle(context.Background(), time.Now()); err != nil {
		t.Fatal(err)
	}
	arrived := tr.arrive()
	got := make(chan error, 1)
	go func() { got <- e.settle(context.Background(), time.Now()) }()
	select {
	case err := <-got:
		t.Fatalf("the query started while a request was arriving (%v)", err)
	case <-time.After(50 * time.Millisecond):
	}
	arrived()
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	stuck := tr.arrive()
	defer stuck()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := tr.settleJob(ctx); !errors.Is(err, context.Canceled) {
		t.Errorf("a job's wait ended with %v, want its context's end", err)
	}
}

// A query waits for a quiet moment when requests came after its own
// (a crowd), not when it came alone.
func TestTurnsSettleQuiet(t *testing.T) {
	tr := newTurns(1)
	e := tr.forExport()
	tr.arrive()() // its own
	since := time.Now()
	start := time.Now()
	if err := e.settle(context.Background(), since); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited >= settleQuiet {
		t.Errorf("a query alone waited %v", waited)
	}
	tr.arrive()() // another, answered at once
	start = time.Now()
	if err := e.settle(context.Background(), since); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < settleQuiet*3/4 || waited > 2*time.Second {
		t.Errorf("a query in a crowd waited %v, want about %v", waited, settleQuiet)
	}
}
