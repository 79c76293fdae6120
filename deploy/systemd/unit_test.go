// Package systemd holds exportd's service unit, exportd.service; its test
// checks the unit with systemd-analyze.
package systemd

import (
	"bufio"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// exportd.service passes `systemd-analyze verify` without a single
// warning (an unknown or misspelt key is only a warning there), and keeps
// the settings the README promises: its own user, a read-only system but
// for the paths named, no new privileges, HUP for reload, a restart on
// failure, and the secrets as credentials.
func TestUnit(t *testing.T) {
	analyze := os.Getenv("EXPORTD_SYSTEMD_ANALYZE")
	if analyze == "" {
		need(t, "EXPORTD_SYSTEMD_ANALYZE is not set (systemd-analyze, from the systemd package)")
	}
	unit, err := os.ReadFile("exportd.service")
	if err != nil {
		t.Fatal(err)
	}
	// verify wants ExecStart's program to exist: this test's own binary
	// stands in for /usr/local/bin/exportd; the rest is the file as shipped.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	const bin = "ExecStart=/usr/local/bin/exportd serve\n"
	if !strings.Contains(string(unit), bin) {
		t.Fatalf("exportd.service has no %q", bin)
	}
	path := filepath.Join(t.TempDir(), "exportd.service")
	if err := os.WriteFile(path, []byte(strings.Replace(string(unit), bin, "ExecStart="+self+" serve\n", 1)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(analyze, "verify", path).CombinedOutput()
	if err != nil || len(out) > 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}

	settings := map[string][]string{}
	sc := bufio.NewScanner(strings.NewReader(string(unit)))
	for sc.Scan() {
		if k, v, ok := strings.Cut(sc.Text(), "="); ok && !strings.HasPrefix(k, "#") {
			settings[k] = append(settings[k], v)
		}
	}
	for k, want := range map[string]string{
		"DynamicUser":     "yes",
		"User":            "exportd",
		"ProtectSystem":   "strict",
		"ReadWritePaths":  "/var/lib/exportd /var/log/exportd",
		"NoNewPrivileges": "yes",
		"ExecReload":      "/bin/kill -HUP $MAINPID",
		"Restart":         "on-failure",
		"ExecStart":       "/usr/local/bin/exportd serve",
	} {
		if got := settings[k]; len(got) != 1 || got[0] != want {
			t.Errorf("%s=%q, want %q", k, got, want)
		}
	}
	for _, cred := range []string{"link.secret:/etc/exportd/link.secret", "audit.key:/etc/exportd/audit.key"} {
		if !strings.Contains(strings.Join(settings["LoadCredential"], "\n"), cred) {
			t.Errorf("no LoadCredential=%s", cred)
		}
	}
}

// need skips t when something the test needs is missing, or fails it when
// EXPORTD_REQUIRE_INTEGRATION=1 (as in CI).
func need(t *testing.T, format string, args ...any) {
	t.Helper()
	if os.Getenv("EXPORTD_REQUIRE_INTEGRATION") == "1" {
		t.Fatalf(format+" (EXPORTD_REQUIRE_INTEGRATION=1)", args...)
	}
	t.Skipf(format, args...)
}
