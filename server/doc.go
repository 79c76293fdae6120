// Package server is exportd's HTTP API: streaming downloads of the
// datasets of a datasets file that never time out behind a proxy.
//
//	cfg, _ := datasets.LoadConfig("datasets.yaml")
//	src, _ := connect.Open(ctx, cfg.Connections["main"].URL, exportd.SourceOptions{Location: cfg.Location})
//	s, err := server.Open(ctx, cfg, server.Options{
//		Config:   server.Config{Sources: map[string]exportd.Source{"main": src}, Addr: ":8080"},
//		LinkKeys: keys,                       // sign job links; verify a host application's
//		Jobs:     &jobs.Config{Workers: 2},   // background jobs (nil: none)
//	})
//	if err != nil { … }
//	defer s.Close()             // the token store, the audit trail, the jobs
//	err = s.ListenAndServe(ctx) // graceful shutdown when ctx ends
//
// [Open] opens what the datasets file's auth: and privacy: blocks name
// (and the jobs); [New] makes a server of parts opened by the caller.
//
// Routes (described by /v1/openapi.json): GET /v1/datasets,
// GET /v1/datasets/{name}, GET /v1/datasets/{name}/export.{xlsx|csv|tsv|jsonl},
// /healthz, /readyz, /metrics. Every export runs through [exportd.Export],
// the engine the CLI and the job worker use too. Errors are JSON,
// {"error": {"code", "message", "field"}}; an error after a download has
// started aborts the connection so the client never keeps a
// complete-looking truncated file.
package server
