package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"time"
)

// longWait is how long an export waits for a slot before its wait is
// logged.
const longWait = 5 * time.Second

// admission admits exports at once and runs them when there is room.
//
// An admitted export holds a place until it ends; at most max places are
// held on the server and perClient by one client (see Config.ClientKey),
// and beyond those the request is refused (errBusy). Of the admitted
// exports, slots run at once (their query, their writing); the others
// wait, costing no query and no connection, and are handed the slots that
// free up fairly between clients: the waiting client with the fewest
// exports running goes first, and among equals the one served longest
// ago, so one client's twenty downloads take turns with another's one. A
// client with nothing running does not wait behind other clients'
// exports either: it may start beyond slots, up to twice slots (the
// headroom drains before anyone else starts).
//
// Background jobs run on the same slots, as one client of their own (see
// joinJob) with a smaller share: at most half the slots (at least one),
// never beyond slots, and never refused. A job thus takes its turn with
// the downloads, but the people waiting at a browser always keep at least
// half the slots.
type admission struct {
	slots      int // ≤ 0: every admitted export runs at once
	max        int // ≤ 0: no bound
	perClient  int // ≤ 0: no bound
	m          *metrics
	log        *slog.Logger
	now        func() time.Time
	mu         sync.Mutex
	running    int
	admitted   int
	waiting    int
	clients    map[string]*client
	lastServed uint64 // a counter: the order in which clients got slots
	// named are the exports that carry a queue name (see place), by
	// client key and name.
	named map[namedKey]*ticket
}

// namedKey finds a named export: a client sees only its own.
type namedKey struct{ client, name string }

// client is one client's share of the admission.
type client struct {
	key      string
	admitted int
	running  int
	queue    []*ticket // waiting, oldest first
	served   uint64    // lastServed when this client last got a slot
}

// ticket is one admitted export: its place and, once granted, its slot.
type ticket struct {
	a      *admission
	c      *client
	joined time.Time
	ready  chan struct{} // closed when the slot is granted
	state  ticketState   // under a.mu
	name   string        // the queue name the client gave, or ""
	// leave, if set, ends the export while it waits (its client asked).
	leave func()
}

type ticketState int

const (
	waiting ticketState = iota
	running
	done
)

func newAdmission(slots, max, perClient int, m *metrics, log *slog.Logger) *admission {
	a := &admission{slots: slots, max: max, perClient: perClient, m: m, log: log, now: time.Now, clients: map[string]*client{}, named: map[namedKey]*ticket{}}
	if slots > 0 {
		m.slots.Set(float64(slots))
	}
	return a
}

// defaultSlots is the number of exports run at once when Config.Slots is
// not set: two per core (past that, more streams only make each one
// slower), at most the smallest connection pool of the sources that tell
// theirs, less two for readiness checks and estimates, and at least one.
func defaultSlots(pools []int) int {
	n := DefaultSlots()
	for _, p := range pools {
		if p > 0 {
			n = min(n, p-2)
		}
	}
	return max(n, 1)
}

// jobsKey is the client of background jobs: no ClientKey (an address or
// "principal:…") can be it.
const jobsKey = "\x00jobs"

// jobShare is the most slots background jobs hold at once.
func (a *admission) jobShare() int { return max(a.slots/2, 1) }

// joinJob admits a background job's export: it is never refused (the
// job queue bounds the jobs) and waits for a slot within the jobs' share.
func (a *admission) joinJob() *ticket {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.enqueue(jobsKey)
}

// join admits an export of client, or refuses it with an error wrapping
// errBusy when a bound is reached. The export may run at once or wait (see
// ticket.wait); every ticket must be ended with done.
func (a *admission) join(key string) (*ticket, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	c := a.clients[key]
	if a.max > 0 && a.admitted-a.jobs() >= a.max {
		return nil, fmt.Errorf("%w: the server holds its limit of %d exports, running or waiting; retry later or run the export as a background job", errBusy, a.max)
	}
	if c != nil && a.perClient > 0 && c.admitted >= a.perClient {
		return nil, fmt.Errorf("%w: you have %d exports running or waiting, your limit; retry when one ends or run the export as a background job", errBusy, a.perClient)
	}
	return a.enqueue(key), nil
}

// enqueue adds an export of the client key to the queue and hands out
// the free slots. It is called with a.mu held.
func (a *admission) enqueue(key string) *ticket {
	c := a.clients[key]
	if c == nil {
		c = &client{key: key}
		a.clients[key] = c
	}
	t := &ticket{a: a, c: c, joined: a.now(), ready: make(chan struct{})}
	a.admitted++
	c.admitted++
	c.queue = append(c.queue, t)
	a.waiting++
	a.m.waiting.Inc()
	a.dispatch()
	return t
}

// jobs returns the background jobs admitted, running or waiting.
func (a *admission) jobs() int {
	if c := a.clients[jobsKey]; c != nil {
		return c.admitted
	}
	return 0
}

// canStart reports whether c may take a slot now.
func (a *admission) canStart(c *client) bool {
	if c.key == jobsKey {
		return a.slots <= 0 || a.running < a.slots && c.running < a.jobShare()
	}
	if a.slots <= 0 || a.running < a.slots {
		return true // dispatch picks the fairest client first
	}
	return c.running == 0 && a.running < 2*a.slots
}

// dispatch hands free slots to waiting exports, fairest client first.
// It is called with a.mu held whenever a slot frees or an export joins.
func (a *admission) dispatch() {
	for a.waiting > 0 {
		var best *client
		for _, c := range a.clients {
			if len(c.queue) == 0 || !a.canStart(c) {
				continue
			}
			if best == nil || c.running < best.running || c.running == best.running && c.served < best.served {
				best = c
			}
		}
		if best == nil {
			return
		}
		t := best.queue[0]
		best.queue = best.queue[1:]
		a.waiting--
		a.m.waiting.Dec()
		a.running++
		a.m.slotsInUse.Inc()
		best.running++
		a.lastServed++
		best.served = a.lastServed
		t.state = running
		waited := a.now().Sub(t.joined)
		a.m.waitTime.Observe(waited.Seconds())
		if waited >= longWait {
			a.log.Info("export waited for a slot", "client", t.c.key, "waited", waited.Round(time.Millisecond).String(),
				"running", a.running, "waiting", a.waiting)
		}
		close(t.ready)
	}
}

// wait blocks until the export has a slot, and returns done as its
// release; it returns ctx's error if ctx ends first (the place stays
// held until done). Calling it again after the slot is granted returns at
// once.
func (t *ticket) wait(ctx context.Context) (func(), error) {
	if ctx.Err() != nil {
		// Ended (the client left, shutdown) before or as the slot came:
		// no query starts; done hands the slot on.
		return nil, context.Cause(ctx)
	}
	select {
	case <-t.ready:
		return t.done, nil
	default:
	}
	select {
	case <-t.ready:
		return t.done, nil
	case <-ctx.Done():
		// A slot granted at the same moment is handed on by done.
		return nil, context.Cause(ctx)
	}
}

// done ends the ticket: it gives back its slot, or its place in the
// queue, so that the next export may start. It may be called more than
// once.
func (t *ticket) done() {
	a := t.a
	a.mu.Lock()
	defer a.mu.Unlock()
	c := t.c
	switch t.state {
	case done:
		return
	case waiting:
		for i, q := range c.queue {
			if q == t {
				c.queue = append(c.queue[:i], c.queue[i+1:]...)
				break
			}
		}
		a.waiting--
		a.m.waiting.Dec()
		if waited := a.now().Sub(t.joined); waited >= longWait {
			a.log.Info("export left while waiting for a slot", "client", c.key, "waited", waited.Round(time.Millisecond).String())
		}
	case running:
		a.running--
		a.m.slotsInUse.Dec()
		c.running--
	}
	t.state = done
	if t.name != "" && a.named[namedKey{c.key, t.name}] == t {
		delete(a.named, namedKey{c.key, t.name})
	}
	a.admitted--
	if c.admitted--; c.admitted == 0 {
		delete(a.clients, c.key)
	}
	a.dispatch()
}

// waitingNow returns the exports waiting for a slot now.
func (a *admission) waitingNow() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.waiting
}

// active returns the exports admitted now, running or waiting.
func (a *admission) active() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.admitted
}

// admitJob waits for a slot for a background job's export, within the
// jobs' share, and returns its release.
func (s *Server) admitJob(ctx context.Context) (func(), error) {
	t := s.admit.joinJob()
	release, err := t.wait(ctx)
	if err != nil {
		t.done()
		return nil, fmt.Errorf("wait for a slot: %w", err)
	}
	if err := s.turns.settleJob(ctx); err != nil {
		release()
		return nil, fmt.Errorf("wait for a slot: %w", err)
	}
	return release, nil
}

// setName gives t the queue name name of its client, by which the client
// asks for its place (place) or leaves the queue (leave); leave ends the
// export. A newer export of the same name takes the name over.
func (t *ticket) setName(name string, leave func()) {
	a := t.a
	a.mu.Lock()
	defer a.mu.Unlock()
	if t.state == done {
		return
	}
	t.name, t.leave = name, leave
	a.named[namedKey{t.c.key, name}] = t
}

// queuePlace is where a named export stands.
type queuePlace struct {
	State string `json:"state"` // "waiting" or "running"
	// Position is the export's place among the waiting ones when every
	// client takes its turn in order (1: the next slot is its); 0 once it
	// runs. The turns change as clients come and go, so it is an
	// estimate.
	Position int     `json:"position"`
	Waiting  int     `json:"waiting"` // exports waiting on the server
	Running  int     `json:"running"` // exports running
	Slots    int     `json:"slots"`   // of how many (0: no limit)
	Waited   float64 `json:"waited_seconds"`
}

// place returns where the export named name of client key stands, or
// false when there is none (it ended, or never was that client's).
func (a *admission) place(key, name string) (queuePlace, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	t := a.named[namedKey{key, name}]
	if t == nil {
		return queuePlace{}, false
	}
	p := queuePlace{State: "running", Waiting: a.waiting, Running: a.running, Slots: max(a.slots, 0),
		Waited: a.now().Sub(t.joined).Seconds()}
	if t.state != waiting {
		return p, true
	}
	p.State = "waiting"
	// Round-robin: before the k-th waiting export of its client go the
	// client's k earlier ones and up to k+1 of every other client's.
	k := 0
	for k < len(t.c.queue) && t.c.queue[k] != t {
		k++
	}
	p.Position = k + 1
	for _, c := range a.clients {
		if c != t.c {
			p.Position += min(len(c.queue), k+1)
		}
	}
	return p, true
}

// leave ends the waiting export named name of client key, and reports
// whether there was one; a running export is left alone.
func (a *admission) leave(key, name string) bool {
	a.mu.Lock()
	t := a.named[namedKey{key, name}]
	if t == nil || t.state != waiting || t.leave == nil {
		a.mu.Unlock()
		return false
	}
	leave := t.leave
	a.mu.Unlock()
	leave()
	return true
}

// keyQueue names a download in the queue (queue=).
const keyQueue = "queue"

// errLeftQueue ends an export whose client took it out of the queue.
var errLeftQueue = errors.New("taken out of the queue by its client")

// validQueueName reports whether name may name an export in the queue:
// 1 to 64 letters, digits, '-' and '_' (the UI sends 26 random ones).
func validQueueName(name string) bool {
	if name == "" || len(name) > 64 {
		return false
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_') {
			return false
		}
	}
	return true
}

// queueStatus answers GET /v1/queue/{id}: where the requester's export
// named id (the queue= of its download) stands. Another client's export
// is not found, as an ended one.
func (s *Server) queueStatus(w http.ResponseWriter, r *http.Request) {
	p, ok := s.admit.place(s.cfg.ClientKey(r), r.PathValue("id"))
	if !ok {
		s.writeError(w, r, errNoQueued)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	writeJSON(w, http.StatusOK, p)
}

// leaveQueue answers DELETE /v1/queue/{id}: the requester's export named
// id ends if it is still waiting (its download fails; the UI does this
// when the user runs it as a background job instead). 204, or 404 when
// it runs already, has ended or is not the requester's.
func (s *Server) leaveQueue(w http.ResponseWriter, r *http.Request) {
	if !s.admit.leave(s.cfg.ClientKey(r), r.PathValue("id")) {
		s.writeError(w, r, errNoQueued)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// errNoQueued answers a queue route whose export is not waiting or
// running for the requester.
var errNoQueued = &Error{Status: http.StatusNotFound, Code: "not_found", Field: "id",
	Message: "no export of yours by that queue name is waiting or running (it may have ended)"}
