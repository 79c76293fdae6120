package server

import (
	"context"
	"slices"
	"sync"
	"time"
)

// turns shares the cores between the running exports, a batch of rows at
// a time: at most n batches are written at once, and when more exports
// wait, the one that has written the fewest rows goes first (least
// attained service); the large ones, which have written about as many
// rows each, take turns among themselves.
//
// Young exports go before all others: an export is young for its first
// youngRows rows and youngFor after its first batch. While a young export
// takes turns (one did within youngGap), the older ones wait. A small
// download started beside large ones thus has the cores to itself for the
// few milliseconds it needs, instead of waiting behind the large ones'
// batches (and their goroutines) for each of its rows; the large ones
// lose those milliseconds (each wait at most youngMaxWait). The slots (admission.go) bound how many
// exports run; the turns decide which of them uses the cores now.
//
// Arriving requests go before every export: from a new connection's
// accept (or a request's handler start) to the request's first bytes (or
// its first round trip to a database), an export that takes a turn waits.
// The time to the first byte of a click is then the CPU its own answer
// needs, not that plus the share the running exports take meanwhile: when
// a crowd clicks at once, every click is answered first and the exports
// resume after. What an export yields so is bounded by a budget
// (arrivalBudget, refilled at arrivalShare of the time), so that clients
// that connect and send nothing, or a steady stream of clicks, cost the
// running exports a fifth of their time at most.
type turns struct {
	mu          sync.Mutex
	free        int
	waiters     []*turnWaiter
	lastYoung   time.Time // when a young export last took a turn
	youngGap    time.Duration
	maxWait     time.Duration // youngMaxWait
	arriving    int           // requests not yet answered (arrive)
	calm        chan struct{} // closed when arriving drops to 0
	lastArrival time.Time     // when a request last started arriving
	jobs        yieldBudget   // the background jobs' (one for all)
	connMax     time.Duration // connArrivalMax
}

// yieldBudget is what one export may still wait for arriving requests.
type yieldBudget struct {
	left time.Duration
	at   time.Time // when left was last refilled
}

const (
	arrivalBudget = 200 * time.Millisecond
	arrivalShare  = 5 // refilled at 1/arrivalShare of the time
)

// refill returns the budget at now.
func (b *yieldBudget) refill(now time.Time) time.Duration {
	if b.at.IsZero() {
		b.left = arrivalBudget
	} else {
		b.left = min(arrivalBudget, b.left+now.Sub(b.at)/arrivalShare)
	}
	b.at = now
	return b.left
}

type turnWaiter struct {
	rows  int64
	ready chan struct{} // closed when the turn is granted
}

const (
	youngRows = 4096
	youngFor  = 2 * time.Second
	youngGap  = 20 * time.Millisecond
	// youngMaxWait bounds one wait of an old export for young ones.
	youngMaxWait = 250 * time.Millisecond
	// connArrivalMax bounds how long a new connection counts as arriving.
	connArrivalMax = 100 * time.Millisecond
	// settleQuiet is how long no request must have come before a query
	// starts among arriving ones (settle).
	settleQuiet = 20 * time.Millisecond
)

func newTurns(n int) *turns {
	return &turns{free: max(n, 1), youngGap: youngGap, maxWait: youngMaxWait, connMax: connArrivalMax}
}

// forExport returns the turns of one export.
func (t *turns) forExport() *exportTurns { return &exportTurns{t: t} }

// exportTurns are the turns of one export. Its budget for arriving
// requests is shared by the start of its query (settle) and its batches
// (take).
type exportTurns struct {
	t      *turns
	first  time.Time // of the first batch; the engine calls from one goroutine
	budget yieldBudget
}

// take is the export's exportd.Export.Turn.
func (e *exportTurns) take(ctx context.Context, rows int64) (func(), error) {
	now := time.Now()
	if e.first.IsZero() {
		e.first = now
	}
	return e.t.take(ctx, rows, rows < youngRows && now.Sub(e.first) < youngFor, &e.budget)
}

// settle waits, once the export has its slot and before its query
// starts, while requests arrive and until none has come for settleQuiet
// since the export's own (started at since), within its budget: a query
// started among a crowd's clicks has the database's CPU compete with them.
func (e *exportTurns) settle(ctx context.Context, since time.Time) error {
	return e.t.waitForArrivals(ctx, e.t.deadline(), &e.budget, since, settleQuiet)
}

// settleJob is settle for a background job's export.
func (t *turns) settleJob(ctx context.Context) error {
	return t.waitForArrivals(ctx, t.deadline(), &t.jobs, time.Now(), settleQuiet)
}

// deadline bounds one wait of an export that starts now (maxWait).
func (t *turns) deadline() time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return time.Now().Add(t.maxWait)
}

// forJob is the Turn of a background job's export: never young.
func (t *turns) forJob(ctx context.Context, rows int64) (func(), error) {
	return t.take(ctx, rows, false, &t.jobs)
}

// arrive counts a request being answered until arrived is called (any
// number of times, from any goroutine).
func (t *turns) arrive() (arrived func()) {
	t.mu.Lock()
	if t.arriving == 0 {
		t.calm = make(chan struct{})
	}
	t.arriving++
	t.lastArrival = time.Now()
	t.mu.Unlock()
	var once sync.Once
	return func() {
		once.Do(func() {
			t.mu.Lock()
			defer t.mu.Unlock()
			if t.arriving--; t.arriving == 0 {
				close(t.calm)
			}
		})
	}
}

// arriveConn is arrive for a new connection: it ends by itself after
// connArrivalMax (a client that connects and sends nothing holds the
// exports that long).
func (t *turns) arriveConn() (arrived func()) {
	end := t.arrive()
	t.mu.Lock()
	d := t.connMax
	t.mu.Unlock()
	tm := time.AfterFunc(d, end)
	return func() {
		tm.Stop()
		end()
	}
}

// take waits for a turn of an export that has written rows rows, and
// returns its end. budget is what it may still wait for arriving requests.
func (t *turns) take(ctx context.Context, rows int64, young bool, budget *yieldBudget) (func(), error) {
	until := t.deadline()
	if err := t.waitForArrivals(ctx, until, budget, time.Time{}, 0); err != nil {
		return nil, err
	}
	if young {
		t.mu.Lock()
		t.lastYoung = time.Now()
		t.mu.Unlock()
	} else if err := t.waitForYoung(ctx, until); err != nil {
		return nil, err
	}
	t.mu.Lock()
	if t.free > 0 && len(t.waiters) == 0 {
		t.free--
		t.mu.Unlock()
		return t.give, nil
	}
	w := &turnWaiter{rows: rows, ready: make(chan struct{})}
	t.waiters = append(t.waiters, w)
	t.mu.Unlock()
	select {
	case <-w.ready:
		return t.give, nil
	case <-ctx.Done():
		t.mu.Lock()
		i := slices.Index(t.waiters, w)
		if i >= 0 {
			t.waiters = slices.Delete(t.waiters, i, i+1)
		}
		t.mu.Unlock()
		if i < 0 {
			t.give() // granted as ctx ended: hand it on
		}
		return nil, context.Cause(ctx)
	}
}

// waitForArrivals waits until no request is arriving and, when quiet is
// set, none has started arriving after since for quiet; or until until,
// or until budget is spent.
func (t *turns) waitForArrivals(ctx context.Context, until time.Time, budget *yieldBudget, since time.Time, quiet time.Duration) error {
	for {
		t.mu.Lock()
		now := time.Now()
		var calm chan struct{} // nil: waiting for the quiet period only
		wait := time.Duration(0)
		if t.arriving > 0 {
			calm, wait = t.calm, until.Sub(now)
		} else if quiet > 0 && t.lastArrival.After(since) {
			wait = t.lastArrival.Add(quiet).Sub(now)
		}
		if wait > 0 {
			wait = min(wait, until.Sub(now), budget.refill(now))
		}
		t.mu.Unlock()
		if wait <= 0 {
			return nil
		}
		tm := time.NewTimer(wait)
		var err error
		select {
		case <-calm:
		case <-tm.C:
		case <-ctx.Done():
			err = context.Cause(ctx)
		}
		tm.Stop()
		t.mu.Lock()
		budget.left -= time.Since(now)
		t.mu.Unlock()
		if err != nil {
			return err
		}
	}
}

// waitForYoung waits until no young export has taken a turn for youngGap,
// or until until (youngMaxWait after the turn was asked for, at most): an
// old export's keep-alives and flushes wait with it, so it never stays
// silent for long.
func (t *turns) waitForYoung(ctx context.Context, until time.Time) error {
	for {
		t.mu.Lock()
		wait := min(time.Until(t.lastYoung.Add(t.youngGap)), time.Until(until))
		t.mu.Unlock()
		if wait <= 0 {
			return nil
		}
		tm := time.NewTimer(wait)
		select {
		case <-tm.C:
		case <-ctx.Done():
			tm.Stop()
			return context.Cause(ctx)
		}
	}
}

// give ends a turn: the waiting export with the fewest rows written (the
// earliest among equals) gets it.
func (t *turns) give() {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.waiters) == 0 {
		t.free++
		return
	}
	best := 0
	for i, w := range t.waiters {
		if w.rows < t.waiters[best].rows {
			best = i
		}
	}
	w := t.waiters[best]
	t.waiters = slices.Delete(t.waiters, best, best+1)
	close(w.ready)
}
