package server

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus metrics, on a registry of its own.
type metrics struct {
	reg         *prometheus.Registry
	exports     *prometheus.CounterVec   // dataset, format, outcome
	rows        *prometheus.CounterVec   // dataset, format
	bytes       *prometheus.CounterVec   // dataset, format
	duration    *prometheus.HistogramVec // dataset, format
	ttfb        *prometheus.HistogramVec // dataset, format
	active      prometheus.Gauge
	cancelled   *prometheus.CounterVec // dataset, format
	http10      prometheus.Counter
	rejected    *prometheus.CounterVec // reason
	auditErrors prometheus.Counter
	reloads     *prometheus.CounterVec // outcome
	// the admission queue (admission.go)
	slots      prometheus.Gauge
	slotsInUse prometheus.Gauge
	waiting    prometheus.Gauge
	waitTime   prometheus.Histogram
}

func newMetrics() *metrics {
	df := []string{"dataset", "format"}
	m := &metrics{
		reg: prometheus.NewRegistry(),
		exports: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exportd_exports_total",
			Help: "Export requests that passed validation, by dataset, format and outcome (ok, cancelled, stalled, error, row_limit, timeout, shutdown, rejected, too_large).",
		}, []string{"dataset", "format", "outcome"}),
		rows: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exportd_export_rows_total", Help: "Rows written by exports.",
		}, df),
		bytes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exportd_export_bytes_total", Help: "Bytes written by exports (before gzip content encoding).",
		}, df),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "exportd_export_duration_seconds",
			Help:    "Duration of exports, from admission to the last byte.",
			Buckets: []float64{0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800},
		}, df),
		ttfb: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "exportd_export_first_byte_seconds",
			Help:    "Time from the start of an export to its first byte.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, df),
		active: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "exportd_active_streams", Help: "Exports answered and not yet ended: running, or waiting for a slot (exportd_waiting_exports).",
		}),
		cancelled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exportd_cancelled_streams_total", Help: "Streams whose client went away before the end.",
		}, df),
		http10: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "exportd_http10_streams_total",
			Help: "Streams served over HTTP/1.0, where an aborted stream looks complete to the client: set proxy_http_version 1.1 in nginx.",
		}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exportd_rejected_exports_total", Help: "Exports refused before they started, by reason (rejected: the bound of exports running or waiting, answered 503; too_large: the row estimate, answered 409).",
		}, []string{"reason"}),
		auditErrors: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "exportd_audit_errors_total", Help: "Exports of personal datasets whose audit record could not be appended (each is logged at error level).",
		}),
		slots: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "exportd_export_slots", Help: "Exports that run at once; the others wait (0: no limit).",
		}),
		slotsInUse: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "exportd_export_slots_in_use", Help: "Exports running now (their query and their writing); it may pass exportd_export_slots by up to as much again for clients that had nothing running.",
		}),
		waiting: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "exportd_waiting_exports", Help: "Exports answered and waiting for a slot (keep-alives flowing, no query yet).",
		}),
		waitTime: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "exportd_export_wait_seconds",
			Help:    "Time exports waited for a slot before their query started.",
			Buckets: []float64{0.001, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300},
		}),
		reloads: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "exportd_reloads_total", Help: "Reloads of the datasets file, by outcome (ok; failed: the file was refused and the running configuration kept).",
		}, []string{"outcome"}),
	}
	m.reg.MustRegister(m.slots, m.slotsInUse, m.waiting, m.waitTime)
	m.reg.MustRegister(m.exports, m.rows, m.bytes, m.duration, m.ttfb, m.active, m.cancelled, m.http10, m.rejected, m.auditErrors, m.reloads,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return m
}

func (m *metrics) handler() http.Handler {
	return promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
}
