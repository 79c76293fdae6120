// Package server is exportd's HTTP API: streaming downloads of the
// datasets of a datasets file that never time out behind a proxy.
//
//	cfg, _ := datasets.LoadConfig("datasets.yaml")
//	src, _ := connect.Open(ctx, cfg.Connections["main"].URL, exportd.SourceOptions{Location: cfg.Location})
//	s, err := server.New(server.Config{Datasets: cfg, Sources: map[string]exportd.Source{"main": src}, Addr: ":8080"})
//	if err != nil { … }
//	err = s.ListenAndServe(ctx) // graceful shutdown when ctx ends
//
// Routes (described by /v1/openapi.json): GET /v1/datasets,
// GET /v1/datasets/{name}, GET /v1/datasets/{name}/export.{xlsx|csv|tsv|jsonl},
// /healthz, /readyz, /metrics. Every export runs through [exportd.Export],
// the engine the CLI and the job worker use too. Errors are JSON,
// {"error": {"code", "message", "field"}}; an error after a download has
// started aborts the connection so the client never keeps a
// complete-looking truncated file.
package server
