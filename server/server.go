package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/exportd/exportd"
	"github.com/exportd/exportd/audit"
	"github.com/exportd/exportd/auth"
	"github.com/exportd/exportd/internal/buildinfo"
	"github.com/exportd/exportd/jobs"
	"github.com/prometheus/client_golang/prometheus"
)

// Config configures a [Server]. Only Datasets and Sources are required;
// every other field has a working default, applied by [New].
type Config struct {
	// Datasets is the loaded datasets file (see [datasets.LoadConfig]).
	Datasets *exportd.Config
	// Sources holds an open source for each connection of Datasets, by
	// connection name. The server uses them but does not close them.
	Sources map[string]exportd.Source

	// Addr is the address ListenAndServe listens on; ":8080" when empty.
	Addr string

	// KeepAlive is how long a stream may go without a row before the
	// server sends bytes that change nothing in the file: an empty deflate
	// block (XLSX always; CSV, TSV and JSON Lines when the response is
	// gzip-encoded) or a space (JSON Lines sent uncompressed), again every
	// KeepAlive, so that a proxy's read timeout never fires while the
	// database is silent. Uncompressed CSV and TSV have no such bytes and
	// stay silent. 0 means DefaultKeepAlive (500 ms: no download is
	// silent for a second, under any proxy read timeout of 1 s or more,
	// for at most 10 bytes a second). A negative
	// value turns keep-alives off, and with them the early first bytes:
	// the response then starts with the first rows, as from a plain
	// streaming server (behind a proxy, a query silent for longer than its
	// read timeout then gets 504).
	KeepAlive time.Duration
	// FlushInterval is the longest time written bytes wait before they are
	// flushed to the client while rows flow; 0 means 250 ms.
	FlushInterval time.Duration
	// FlushBytes is the most bytes written before a flush; 0 means 64 KiB.
	FlushBytes int
	// WriteTimeout bounds each single write to the client (a rolling
	// deadline, renewed as bytes leave), not the whole response: a client
	// that stops reading for this long fails the stream. 0 means 60 s.
	WriteTimeout time.Duration
	// ReadHeaderTimeout bounds reading a request's headers; 0 means 10 s.
	ReadHeaderTimeout time.Duration
	// IdleTimeout closes keep-alive connections idle for this long; 0
	// means 120 s.
	IdleTimeout time.Duration
	// MaxDuration bounds one export when its dataset declares no
	// max_duration; 0 means no bound.
	MaxDuration time.Duration
	// ShutdownGrace is how long ListenAndServe lets running streams finish
	// after its context ends before it cancels them; 0 means 30 s.
	ShutdownGrace time.Duration

	// Slots is the most exports that run at once (their query and their
	// writing). Every other admitted export is answered at once (status,
	// headers, the file's first bytes) and waits, with keep-alives
	// flowing and no query, for a slot; slots are handed out fairly
	// between clients (see ClientKey), and a client with nothing running
	// may start beyond Slots, up to twice Slots. 0 means DefaultSlots(),
	// at most the smallest connection pool of Sources that report theirs
	// (a MaxConns() int method) less two; a negative value means no limit
	// (every admitted export runs at once).
	Slots int
	// MaxExports is the most exports admitted on this server at once,
	// running or waiting; beyond it a request is refused with 503 and
	// Retry-After. 0 means 4096, a negative value means no limit.
	MaxExports int
	// MaxExportsPerClient is the most exports one client (see ClientKey)
	// has admitted at once, running or waiting; 0 means 1024, a negative
	// value means no limit.
	MaxExportsPerClient int
	// RetryAfter is the delay a refusal (503) suggests; 0 means 5 s.
	RetryAfter time.Duration
	// ClientKey names the client a request comes from, for the fair
	// share of slots and the per-client bound. Nil means the remote IP address, taken from
	// X-Real-IP or X-Forwarded-For when the request comes from one of
	// TrustedProxies (see remoteIP); with Auth, an authenticated
	// principal's name (anonymous requests still by address).
	ClientKey func(r *http.Request) string
	// TrustedProxies are the addresses whose X-Real-IP and X-Forwarded-For
	// headers name the client (e.g. 127.0.0.1/32 for a local nginx).
	TrustedProxies []netip.Prefix

	// EstimateFactor: when a dataset has a row limit and its source is an
	// [exportd.Estimator] whose estimate exceeds the limit by this factor,
	// the download is refused with 409 before it starts, suggesting a
	// background job. 0 means 2; a negative value turns the check off.
	// (Without such an estimate, a download that passes the limit fails
	// mid-stream: the connection is aborted.)
	EstimateFactor float64

	// MaxQueryBytes is the longest query string accepted (414 beyond);
	// 0 means 8 KiB, nginx's default request line buffer.
	MaxQueryBytes int

	// Logger receives one line per export and server events; nil means
	// slog.Default().
	Logger *slog.Logger

	// Auth finds the principal of each request (see package auth and
	// server/auth.go): every route but /healthz, /readyz, /metrics,
	// /v1/openapi.json and the UI's static files needs one (401 without),
	// datasets declare the roles that may run them and parameters pinned
	// per role. Nil turns access control off: every request is served,
	// with no principal.
	Auth *auth.Authenticator

	// Jobs, when set, serves the background job API (server/jobs.go):
	// POST /v1/datasets/{name}/jobs, /v1/jobs… Its jobs run on this
	// server's slots (see Slots), as one client holding at most half of
	// them, and take turns at the cores with the downloads (New calls
	// its ShareSlots).
	Jobs *jobs.Manager
	// Reload, if set, re-reads the datasets file and reloads the server
	// (and its jobs) from it, returning how many datasets it serves now:
	// POST /v1/admin/reload calls it (reload.go). The command's SIGHUP
	// does the same.
	Reload func(ctx context.Context) (datasets int, err error)
	// Audit is the audit trail of personal-data exports (package audit):
	// one record per export attempt of a personal dataset, allowed or
	// denied. Required when Datasets has a personal dataset.
	Audit *audit.Store

	// Principal names the owner of the jobs a request submits and sees.
	// Nil means the authenticated principal's name (see PrincipalName),
	// and AnonymousPrincipal without one.
	Principal func(r *http.Request) string
}

// Defaults applied by New.
const (
	DefaultKeepAlive      = 500 * time.Millisecond
	DefaultFlushInterval  = 250 * time.Millisecond
	DefaultFlushBytes     = 64 << 10
	DefaultWriteTimeout   = 60 * time.Second
	DefaultShutdownGrace  = 30 * time.Second
	DefaultMaxExports     = 4096
	DefaultMaxPerClient   = 1024
	DefaultRetryAfter     = 5 * time.Second
	DefaultMaxQueryBytes  = 8 << 10
	defaultReadHeader     = 10 * time.Second
	defaultIdle           = 120 * time.Second
	defaultEstimateFactor = 2
)

// DefaultSlots is the number of exports a server runs at once unless
// Config.Slots says otherwise: two per core (GOMAXPROCS). Past that,
// running more at once makes each one slower and every first row later.
func DefaultSlots() int { return 2 * runtime.GOMAXPROCS(0) }

// Server serves the exportd HTTP API. Make one with [New].
type Server struct {
	cfg     Config
	log     *slog.Logger
	mux     *http.ServeMux
	handler http.Handler
	metrics *metrics
	admit   *admission
	turns   *turns                      // the cores, shared between running exports (turns.go)
	cop     *http.CrossOriginProtection // refuses cross-site state-changing requests (auth.go)
	// served is the configuration of the datasets served now (reload.go).
	served atomic.Pointer[served]

	// streams is the context every export runs under: it ends when the
	// shutdown grace period is over.
	streams     context.Context
	stopStreams context.CancelCauseFunc
	draining    atomic.Bool

	// closers release what Open opened (open.go).
	closers []func()
}

// errShutdown ends the streams still running when the grace period is over.
var errShutdown = errors.New("server shutting down")

// New checks cfg, applies its defaults and returns a Server.
func New(cfg Config) (*Server, error) {
	def := func(d *time.Duration, v time.Duration) {
		if *d == 0 {
			*d = v
		}
	}
	def(&cfg.KeepAlive, DefaultKeepAlive)
	def(&cfg.FlushInterval, DefaultFlushInterval)
	def(&cfg.WriteTimeout, DefaultWriteTimeout)
	def(&cfg.ReadHeaderTimeout, defaultReadHeader)
	def(&cfg.IdleTimeout, defaultIdle)
	def(&cfg.ShutdownGrace, DefaultShutdownGrace)
	def(&cfg.RetryAfter, DefaultRetryAfter)
	if cfg.FlushBytes <= 0 {
		cfg.FlushBytes = DefaultFlushBytes
	}
	if cfg.MaxExports == 0 {
		cfg.MaxExports = DefaultMaxExports
	}
	if cfg.MaxExportsPerClient == 0 {
		cfg.MaxExportsPerClient = DefaultMaxPerClient
	}
	if cfg.MaxQueryBytes <= 0 {
		cfg.MaxQueryBytes = DefaultMaxQueryBytes
	}
	if cfg.EstimateFactor == 0 {
		cfg.EstimateFactor = defaultEstimateFactor
	}
	if cfg.Addr == "" {
		cfg.Addr = ":8080"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ClientKey == nil {
		proxies := cfg.TrustedProxies
		cfg.ClientKey = func(r *http.Request) string {
			// An authenticated principal is one client wherever it comes
			// from; anonymous requests are told apart by address.
			if p := auth.From(r.Context()); p != nil && p.Via != auth.ViaAnonymous {
				return "principal:" + p.ID()
			}
			return remoteIP(r, proxies)
		}
	}
	if cfg.Principal == nil {
		cfg.Principal = func(r *http.Request) string {
			if n := PrincipalName(r); n != "" {
				return n
			}
			return AnonymousPrincipal
		}
	}
	first, err := newServed(cfg.Datasets, cfg.Sources, cfg.Auth, cfg.Audit != nil) // reload.go
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, metrics: newMetrics(), cop: http.NewCrossOriginProtection()}
	s.served.Store(first)
	// The running build (what /healthz says too): which nodes of a fleet
	// an upgrade has reached.
	bi := buildinfo.Read()
	if cfg.Jobs != nil {
		// The schedules' runs and deliveries (package jobs).
		s.metrics.reg.MustRegister(cfg.Jobs.Collectors()...)
	}
	s.metrics.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name:        "exportd_build_info",
		Help:        "Always 1; the labels name the running build: module version, VCS revision and Go version.",
		ConstLabels: prometheus.Labels{"version": bi.Version, "revision": bi.Revision, "goversion": bi.Go},
	}, func() float64 { return 1 }))
	if cfg.Slots == 0 {
		var pools []int
		for _, src := range cfg.Sources {
			if p, ok := src.(interface{ MaxConns() int }); ok {
				pools = append(pools, p.MaxConns())
			}
		}
		cfg.Slots = defaultSlots(pools)
		s.cfg.Slots = cfg.Slots
	}
	s.admit = newAdmission(cfg.Slots, cfg.MaxExports, cfg.MaxExportsPerClient, s.metrics, s.log)
	s.turns = newTurns(runtime.GOMAXPROCS(0))
	if cfg.Jobs != nil {
		// Jobs run on the same slots, within their share (admission.go).
		cfg.Jobs.ShareSlots(s.admitJob, s.turns.forJob)
	}
	s.streams, s.stopStreams = context.WithCancelCause(context.Background())
	s.mux = http.NewServeMux()
	handle(s.mux, s.apiRoutes())
	handle(s.mux, s.uiRoutes()) // the web UI (ui.go)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, &Error{Status: http.StatusNotFound, Code: "not_found", Message: "no such route: " + r.URL.Path})
	})
	s.handler = s.withServed(securityHeaders(s.limitQuery(s.authenticate(s.mux))))
	return s, nil
}

// route is one entry of the API; OpenAPI is its path in openapi.json.
type route struct {
	method, pattern, openAPI string
	handler                  http.Handler
}

// handle registers routes on mux.
func handle(mux *http.ServeMux, routes []route) {
	for _, rt := range routes {
		mux.Handle(rt.method+" "+rt.pattern, rt.handler)
	}
}

// apiRoutes lists the JSON API's routes this server serves: routes, and
// the background jobs' (jobs.go) when Config.Jobs is set. The OpenAPI
// document is tested against routes and jobRoutes.
func (s *Server) apiRoutes() []route {
	routes := s.routes()
	if s.cfg.Jobs != nil {
		routes = append(routes, s.jobRoutes()...)
		routes = append(routes, s.scheduleRoutes()...)
	}
	if s.cfg.Reload != nil {
		routes = append(routes, s.adminRoutes()...)
	}
	return routes
}

// routes lists the API routes every server serves.
func (s *Server) routes() []route {
	return []route{
		{"GET", "/v1/datasets", "/v1/datasets", http.HandlerFunc(s.listDatasets)},
		{"GET", "/v1/datasets/{name}", "/v1/datasets/{name}", http.HandlerFunc(s.getDataset)},
		{"GET", "/v1/datasets/{name}/{file}", "/v1/datasets/{name}/export.{format}", http.HandlerFunc(s.export)},
		{"GET", "/v1/openapi.json", "/v1/openapi.json", http.HandlerFunc(serveOpenAPI)},
		{"GET", "/v1/queue/{id}", "/v1/queue/{id}", http.HandlerFunc(s.queueStatus)},
		{"DELETE", "/v1/queue/{id}", "/v1/queue/{id}", http.HandlerFunc(s.leaveQueue)},
		{"GET", "/healthz", "/healthz", http.HandlerFunc(s.healthz)},
		{"GET", "/readyz", "/readyz", http.HandlerFunc(s.readyz)},
		{"GET", "/metrics", "/metrics", s.metrics.handler()},
	}
}

// Handler returns the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// httpServer returns the http.Server of the handler, with the configured timeouts:
// ReadHeaderTimeout and IdleTimeout set, and no WriteTimeout (each export
// sets a rolling write deadline of its own).
//
// A new connection counts as arriving (turns.go) from its accept: the wait
// for its request to be read is part of a click's first byte too.
func (s *Server) httpServer() *http.Server {
	var arriving sync.Map // net.Conn → its arrival's end
	return &http.Server{
		Addr:              s.cfg.Addr,
		Handler:           s.handler,
		ReadHeaderTimeout: s.cfg.ReadHeaderTimeout,
		IdleTimeout:       s.cfg.IdleTimeout,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			end := s.turns.arriveConn()
			arriving.Store(c, end)
			return context.WithValue(ctx, connArrivalKey{}, end)
		},
		ConnState: func(c net.Conn, st http.ConnState) {
			switch st {
			case http.StateIdle:
				if end, ok := arriving.Load(c); ok {
					end.(func())()
				}
			case http.StateClosed, http.StateHijacked:
				if end, ok := arriving.LoadAndDelete(c); ok {
					end.(func())()
				}
			}
		},
	}
}

type connArrivalKey struct{}

// arrive counts r as arriving until the returned end is called; it ends
// its connection's arrival too.
func (s *Server) arrive(r *http.Request) (end func()) {
	arrived := s.turns.arrive()
	conn, _ := r.Context().Value(connArrivalKey{}).(func())
	return func() {
		arrived()
		if conn != nil {
			conn()
		}
	}
}

// ListenAndServe listens on Config.Addr and serves until ctx ends, then
// shuts down gracefully (see [Server.Serve]).
func (s *Server) ListenAndServe(ctx context.Context) error {
	ln, err := net.Listen("tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("listen: %w", err)
	}
	return s.Serve(ctx, ln)
}

// Serve serves on ln until ctx ends. It then stops accepting connections,
// answers /readyz with 503, and lets running streams finish for
// Config.ShutdownGrace; streams still running after that are cancelled
// (their clients see a failed download) and Serve returns an error saying
// so. Serve returns nil after a graceful shutdown.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := s.httpServer()
	errc := make(chan error, 1)
	go func() { errc <- hs.Serve(ln) }()
	s.log.Info("serving", "addr", ln.Addr().String(), "datasets", len(s.served.Load().cfg.Datasets))
	select {
	case err := <-errc:
		s.stopStreams(errShutdown)
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	s.draining.Store(true)
	s.log.Info("shutting down", "grace", s.cfg.ShutdownGrace.String(), "active_streams", s.admit.active(), "waiting", s.admit.waitingNow())
	grace, cancel := context.WithTimeout(context.Background(), s.cfg.ShutdownGrace)
	defer cancel()
	err := hs.Shutdown(grace)
	if err != nil {
		// The grace period is over: cancel the streams, then close.
		active := s.admit.active()
		s.stopStreams(errShutdown)
		err = fmt.Errorf("grace period of %s over, %d streams cancelled: %w", s.cfg.ShutdownGrace, active, errors.Join(err, hs.Close()))
	}
	s.stopStreams(errShutdown)
	<-errc
	if err != nil {
		return fmt.Errorf("shutdown: %w", err)
	}
	return nil
}

// remoteIP returns the client's IP address: the connection's peer, or,
// when the peer is one of the trusted proxies, the address the proxies
// name. X-Real-IP is taken when it names an untrusted address (a proxy
// that sets it to its own peer, as the shipped nginx config does);
// otherwise X-Forwarded-For is read from the right, skipping the trusted
// proxies that appended to it, so that behind a chain of proxies the
// client is the first address none of them vouches for. Entries left of
// that are the client's own claims and are not believed.
func remoteIP(r *http.Request, trusted []netip.Prefix) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		host = r.RemoteAddr
	}
	isTrusted := func(s string) bool {
		addr, err := netip.ParseAddr(s)
		if err != nil {
			return false
		}
		addr = addr.Unmap()
		for _, p := range trusted {
			if p.Contains(addr) {
				return true
			}
		}
		return false
	}
	if len(trusted) == 0 || !isTrusted(host) {
		return host
	}
	realIP := strings.TrimSpace(r.Header.Get("X-Real-IP"))
	if realIP != "" && !isTrusted(realIP) {
		return realIP
	}
	var hops []string
	for _, v := range r.Header.Values("X-Forwarded-For") {
		for hop := range strings.SplitSeq(v, ",") {
			if hop = strings.TrimSpace(hop); hop != "" {
				hops = append(hops, hop)
			}
		}
	}
	for i := len(hops) - 1; i >= 0; i-- {
		if !isTrusted(hops[i]) {
			return hops[i]
		}
	}
	// Every address is a trusted proxy: the farthest one named.
	switch {
	case len(hops) > 0:
		return hops[0]
	case realIP != "":
		return realIP
	}
	return host
}

// limitQuery answers 414 to a request whose query string is too long,
// before any handler parses it.
func (s *Server) limitQuery(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if len(r.URL.RawQuery) > s.cfg.MaxQueryBytes {
			s.writeError(w, r, &Error{Status: http.StatusRequestURITooLong, Code: "query_too_long",
				Message: fmt.Sprintf("the query string has %d bytes; at most %d are accepted", len(r.URL.RawQuery), s.cfg.MaxQueryBytes)})
			return
		}
		next.ServeHTTP(w, r)
	})
}
