package datasets

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/exportd/exportd"
)

// ${NAME} in the datasets file takes the variable NAME, or, when it is
// unset, the content of the file NAME_FILE names: a secret (a database
// password) kept in a file such as a systemd credential, out of the
// environment.
func TestConfigEnvFromFile(t *testing.T) {
	dir := t.TempDir()
	secret := strings.Repeat("s3cr3t", 8)
	secretFile := filepath.Join(dir, "db.password")
	if err := os.WriteFile(secretFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yml := "connections: {main: {url: 'postgres://u:${EXPORTD_TEST_DBPASS}@h/db'}, other: {url: 'postgres://u:${EXPORTD_TEST_PW}@h/db'}}\n" +
		"datasets: {d: {connection: main, sql: SELECT 1}}\n"
	parse := func() (*exportd.Config, error) { return ParseConfig(filepath.Join(dir, "f.yaml"), []byte(yml)) }

	t.Setenv("EXPORTD_TEST_DBPASS", "pw")
	t.Setenv("EXPORTD_TEST_PW_FILE", secretFile)
	cfg, err := parse()
	if err != nil {
		t.Fatal(err)
	}
	if got, want := cfg.Connections["other"].URL, "postgres://u:"+secret+"@h/db"; got != want {
		t.Errorf("password from EXPORTD_TEST_PW_FILE: %q, want %q", got, want)
	}

	// The variable itself wins over its _FILE.
	t.Setenv("EXPORTD_TEST_PW", "vvv")
	if cfg, err = parse(); err != nil || cfg.Connections["other"].URL != "postgres://u:vvv@h/db" {
		t.Errorf("EXPORTD_TEST_PW beside its _FILE: %v %v", cfg, err)
	}
	os.Unsetenv("EXPORTD_TEST_PW")

	// A _FILE that cannot be read is an error naming the variable.
	os.Unsetenv("EXPORTD_TEST_DBPASS")
	t.Setenv("EXPORTD_TEST_DBPASS_FILE", filepath.Join(dir, "missing"))
	if _, err := parse(); err == nil || !strings.Contains(err.Error(), "connections.main.url: environment variable EXPORTD_TEST_DBPASS_FILE: open ") {
		t.Errorf("unreadable _FILE: %v", err)
	}
	// Neither set: the error says so.
	os.Unsetenv("EXPORTD_TEST_DBPASS_FILE")
	if _, err := parse(); err == nil || !strings.Contains(err.Error(), `environment variable "EXPORTD_TEST_DBPASS" is not set`) {
		t.Errorf("unset: %v", err)
	}
}
