// Package e2e holds exportd's end-to-end tests: the exportd binary (built
// without the race detector) behind a real nginx, built from the shipped
// deploy/nginx/exportd.conf with proxy_read_timeout 3s, on a real
// PostgreSQL (EXPORTD_POSTGRES_URL). Without nginx or PostgreSQL the tests
// skip, unless EXPORTD_REQUIRE_INTEGRATION=1, when they fail.
package e2e
