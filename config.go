package exportd

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Config is a datasets file: the connections it uses and the datasets it
// declares, in the file's order. The file is YAML; unknown fields are
// mistakes:
//
//	timezone: Asia/Seoul          # timestamptz conversion and datetime parameters; default UTC
//	connections:
//	  main:
//	    url: sqlite:demo.db       # postgres://…, mysql://…, sqlite:PATH (relative to this file); ${VAR} expanded
//	datasets:
//	  members:                    # [a-z0-9_-]+
//	    title: 회원 목록
//	    description: Members who joined in a period.
//	    connection: main          # optional when there is one connection
//	    sql: SELECT id, name FROM members WHERE joined_at >= :from AND grade IN (:grades)
//	    params:                   # every :name of the sql, and only those
//	      - {name: from, type: date, required: true, label: 가입일 시작}
//	      - {name: grades, type: enum, values: [gold, silver], list: true, default: [gold]}
//	    columns:                  # optional; in the query's order
//	      - {name: id, header: 번호, type: int, format: '0', width: 8}
//	      - {name: name, header: 이름}
//	    sheet: 회원
//	    filename: 회원목록_{from}   # {param} fields; the format's extension is appended
//	    row_limit: 100000         # most rows of a direct download; 0 = none
//	    timeout: 30s              # statement timeout
//	    max_duration: 10m         # longest export
//	    key: id                   # key column for partitioned downloads
//	    roles: [admin, manager]   # who may run it; none = any authenticated principal
//	    pin:                      # per role: parameters it cannot change
//	      manager:
//	        branch: {attr: branch}  # the principal's attribute; or a value, or a list
//	auth:                         # where principals come from: see AuthConfig
//	  anonymous: {roles: [admin], from: [127.0.0.1/32]}
//
// Parameter types are string, int, float, date, datetime, bool and enum;
// rules: required, default, min/max (int, float, date, datetime),
// max_length and pattern (string), values (enum), list.
type Config struct {
	Path        string                // the file the config was read from, as given
	Timezone    string                // IANA zone name; "UTC" when the file names none
	Location    *time.Location        // Timezone, loaded
	Connections map[string]Connection // by name
	Datasets    []*Dataset            // in the file's order
	// Auth is the auth: block; never nil (a file without one gets the
	// default tokens database and nothing else).
	Auth *AuthConfig
	// Privacy is the privacy: block (see PrivacyConfig); never nil.
	Privacy *PrivacyConfig
}

// Connection is a named database connection of a datasets file.
type Connection struct {
	Name string
	// URL is postgres://…, mysql://… or sqlite:PATH with every ${VAR}
	// expanded; a relative SQLite path has been made relative to the
	// directory of the config file.
	URL string
}

// Driver returns "postgres", "mysql" or "sqlite" according to the scheme
// of c.URL, or "" when the scheme is not supported.
func (c Connection) Driver() string {
	u := strings.ToLower(c.URL)
	switch {
	case strings.HasPrefix(u, "postgres://"), strings.HasPrefix(u, "postgresql://"):
		return "postgres"
	case strings.HasPrefix(u, "mysql://"):
		return "mysql"
	case strings.HasPrefix(u, "sqlite:"):
		return "sqlite"
	}
	return ""
}

// ErrUnknownDataset is returned (wrapped) by [Config.Lookup] for a name the
// config does not declare.
var ErrUnknownDataset = errors.New("unknown dataset")

// Dataset returns the dataset called name.
func (c *Config) Dataset(name string) (*Dataset, bool) {
	for _, d := range c.Datasets {
		if d.Name == name {
			return d, true
		}
	}
	return nil, false
}

// Lookup returns the dataset called name, or an error wrapping
// [ErrUnknownDataset].
func (c *Config) Lookup(name string) (*Dataset, error) {
	if d, ok := c.Dataset(name); ok {
		return d, nil
	}
	return nil, fmt.Errorf("%w %q", ErrUnknownDataset, name)
}
