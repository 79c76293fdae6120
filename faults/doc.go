// Package faults holds exportd's fault tests: the databases restarted
// under a running stream or job (on private PostgreSQL and MariaDB
// servers the tests start and stop themselves), and the network between
// exportd and the database degraded by a real TCP fault proxy
// (toxiproxy): latency, a reset connection, a black hole. The package has
// no code of its own; its tests say what a user and an operator see when
// each fault happens (see the README's "Operations" section).
package faults
