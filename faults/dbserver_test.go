package faults

import (
	"context"
	"database/sql"
	"fmt"
	"net"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"testing"
	"time"

	_ "github.com/go-sql-driver/mysql"
	"github.com/jackc/pgx/v5"
)

// need skips the test when a component is missing, or fails it when
// EXPORTD_REQUIRE_INTEGRATION=1 (as in CI).
func need(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("EXPORTD_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf(format, args...)
	}
	t.Skipf(format, args...)
}

func freePort(t *testing.T) int {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

// privateDir makes a directory the database server's user can use; it is
// removed when the test ends. As root, the servers run as an unprivileged
// user (initdb refuses root), which needs the directory to be its own.
func privateDir(t *testing.T, prefix string, owner *user.User) string {
	t.Helper()
	dir, err := os.MkdirTemp("", prefix)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	if owner != nil {
		uid, _ := strconv.Atoi(owner.Uid)
		gid, _ := strconv.Atoi(owner.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// command runs name with args, as owner when it is set (through runuser).
func command(owner *user.User, name string, args ...string) *exec.Cmd {
	if owner != nil {
		return exec.Command("runuser", append([]string{"-u", owner.Username, "--", name}, args...)...)
	}
	return exec.Command(name, args...)
}

// unprivileged returns the user a database server runs as when the test
// runs as root (nil otherwise).
func unprivileged(t *testing.T, name string) *user.User {
	t.Helper()
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		need(t, "running as root, a database server needs the user %s: %v", name, err)
	}
	return u
}

// pgServer is a private PostgreSQL server: its own data directory and
// port, never the shared server on 5432, so that a test may stop it.
type pgServer struct {
	t     *testing.T
	bin   string
	dir   string
	port  int
	owner *user.User
	URL   string // postgres://…/postgres
}

// startPostgres initialises and starts a private PostgreSQL server with
// the binaries of EXPORTD_PG_BINDIR (e.g. /usr/lib/postgresql/15/bin; .ci/run
// sets it). It is stopped when the test ends.
func startPostgres(t *testing.T) *pgServer {
	t.Helper()
	bin := os.Getenv("EXPORTD_PG_BINDIR")
	if bin == "" {
		need(t, "EXPORTD_PG_BINDIR is not set (PostgreSQL's bin directory, for a private server)")
	}
	if _, err := os.Stat(filepath.Join(bin, "initdb")); err != nil {
		need(t, "initdb: %v", err)
	}
	owner := unprivileged(t, "postgres")
	root := privateDir(t, "exportd-faults-pg-", owner)
	p := &pgServer{t: t, bin: bin, dir: filepath.Join(root, "data"), port: freePort(t), owner: owner}
	p.URL = fmt.Sprintf("postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", p.port)
	out, err := command(owner, filepath.Join(bin, "initdb"), "-D", p.dir, "-A", "trust", "-U", "postgres", "--no-sync", "-E", "UTF8").CombinedOutput()
	if err != nil {
		t.Fatalf("initdb: %v\n%s", err, out)
	}
	p.Start()
	t.Cleanup(func() {
		command(owner, filepath.Join(bin, "pg_ctl"), "-D", p.dir, "-m", "immediate", "-w", "stop").Run()
	})
	return p
}

// Start starts the server and waits until it accepts connections.
func (p *pgServer) Start() {
	p.t.Helper()
	opts := fmt.Sprintf("-c port=%d -c listen_addresses=127.0.0.1 -c unix_socket_directories='' -c fsync=off -c max_connections=50", p.port)
	out, err := command(p.owner, filepath.Join(p.bin, "pg_ctl"), "-D", p.dir, "-l", filepath.Join(filepath.Dir(p.dir), "log"),
		"-o", opts, "-w", "-t", "60", "start").CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(filepath.Join(filepath.Dir(p.dir), "log"))
		p.t.Fatalf("pg_ctl start: %v\n%s\n%s", err, out, log)
	}
}

// Stop stops the server with a fast shutdown: sessions are ended, running
// queries aborted, as on a restart by an administrator or a failover.
func (p *pgServer) Stop() {
	p.t.Helper()
	out, err := command(p.owner, filepath.Join(p.bin, "pg_ctl"), "-D", p.dir, "-m", "fast", "-w", "-t", "60", "stop").CombinedOutput()
	if err != nil {
		p.t.Fatalf("pg_ctl stop: %v\n%s", err, out)
	}
}

// Exec runs SQL statements on the server.
func (p *pgServer) Exec(sqls ...string) {
	p.t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, p.URL)
	if err != nil {
		p.t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, s := range sqls {
		if _, err := conn.Exec(ctx, s); err != nil {
			p.t.Fatalf("%s: %v", s, err)
		}
	}
}

// mariaServer is a private MariaDB server: its own data directory, port
// and socket, never the shared server on 3306.
type mariaServer struct {
	t    *testing.T
	bin  string
	dir  string
	port int
	user *user.User
	cmd  *exec.Cmd
	done chan struct{}
	URL  string // mysql://root@…/test
}

// startMariaDB installs a data directory with mariadb-install-db and
// starts EXPORTD_MARIADBD (.ci/run sets it to /usr/sbin/mariadbd) on it,
// without grant tables (any user, no password). It is stopped when the
// test ends.
func startMariaDB(t *testing.T) *mariaServer {
	t.Helper()
	bin := os.Getenv("EXPORTD_MARIADBD")
	if bin == "" {
		need(t, "EXPORTD_MARIADBD is not set (the mariadbd binary, for a private server)")
	}
	if _, err := os.Stat(bin); err != nil {
		need(t, "mariadbd: %v", err)
	}
	installDB, err := exec.LookPath("mariadb-install-db")
	if err != nil {
		need(t, "mariadb-install-db: %v", err)
	}
	owner := unprivileged(t, "mysql")
	root := privateDir(t, "exportd-faults-maria-", owner)
	m := &mariaServer{t: t, bin: bin, dir: root, port: freePort(t), user: owner}
	m.URL = fmt.Sprintf("mysql://root@127.0.0.1:%d/test", m.port)
	args := []string{"--no-defaults", "--datadir=" + filepath.Join(root, "data"), "--auth-root-authentication-method=normal", "--skip-test-db"}
	if owner != nil {
		args = append(args, "--user="+owner.Username)
	}
	cmd := exec.Command(installDB, args...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("mariadb-install-db: %v\n%s", err, out)
	}
	m.Start()
	t.Cleanup(func() {
		if m.cmd != nil {
			m.cmd.Process.Kill()
			<-m.done
		}
	})
	m.Exec("CREATE DATABASE IF NOT EXISTS test")
	return m
}

// Start starts mariadbd and waits until it accepts connections.
func (m *mariaServer) Start() {
	m.t.Helper()
	args := []string{"--no-defaults", "--datadir=" + filepath.Join(m.dir, "data"), "--port=" + strconv.Itoa(m.port),
		"--bind-address=127.0.0.1", "--socket=" + filepath.Join(m.dir, "mysqld.sock"), "--pid-file=" + filepath.Join(m.dir, "mysqld.pid"),
		"--skip-grant-tables", "--skip-log-bin", "--innodb-buffer-pool-size=32M", "--skip-name-resolve"}
	if m.user != nil {
		args = append(args, "--user="+m.user.Username)
	}
	log, err := os.OpenFile(filepath.Join(m.dir, "log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		m.t.Fatal(err)
	}
	cmd := exec.Command(m.bin, args...)
	cmd.Stdout, cmd.Stderr = log, log
	if err := cmd.Start(); err != nil {
		m.t.Fatal(err)
	}
	m.cmd, m.done = cmd, make(chan struct{})
	go func() { cmd.Wait(); log.Close(); close(m.done) }()
	db, err := sql.Open("mysql", fmt.Sprintf("root@tcp(127.0.0.1:%d)/", m.port))
	if err != nil {
		m.t.Fatal(err)
	}
	defer db.Close()
	deadline := time.Now().Add(60 * time.Second)
	for db.Ping() != nil {
		select {
		case <-m.done:
			b, _ := os.ReadFile(filepath.Join(m.dir, "log"))
			m.t.Fatalf("mariadbd exited:\n%s", tail(string(b), 3000))
		default:
		}
		if time.Now().After(deadline) {
			m.t.Fatal("mariadbd did not start within 60 s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// Stop shuts mariadbd down (SIGTERM: connections are killed, as on a
// restart by an administrator) and waits for it to exit.
func (m *mariaServer) Stop() {
	m.t.Helper()
	m.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-m.done:
	case <-time.After(60 * time.Second):
		m.t.Fatal("mariadbd did not stop within 60 s")
	}
	m.cmd = nil
}

// Exec runs SQL statements on the server.
func (m *mariaServer) Exec(sqls ...string) {
	m.t.Helper()
	db, err := sql.Open("mysql", fmt.Sprintf("root@tcp(127.0.0.1:%d)/", m.port))
	if err != nil {
		m.t.Fatal(err)
	}
	defer db.Close()
	for _, s := range sqls {
		if _, err := db.Exec(s); err != nil {
			m.t.Fatalf("%s: %v", s, err)
		}
	}
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}
