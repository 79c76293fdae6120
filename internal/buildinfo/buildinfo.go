// Package buildinfo reports what exportd binary is running: its module
// version, the version-control revision and time it was built from, and
// the Go version, as the Go toolchain records them in the binary
// (runtime/debug.ReadBuildInfo). A `go build` in a git checkout records
// the revision; `go install module@version` records the version.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"
	"sync"
)

// version, when set at link time (-ldflags "-X
// github.com/exportd/exportd/internal/buildinfo.version=v1.2.3"), replaces
// the module version the toolchain recorded: for packagers who build from
// a source archive without version control.
var version string

// Info describes a build. Empty fields were not recorded.
type Info struct {
	Version  string // the module version: v1.2.3, a pseudo-version, or (devel)
	Revision string // the VCS revision (a git commit)
	Time     string // the revision's commit time, RFC 3339
	Modified bool   // the working tree had changes the revision does not hold
	Go       string // the Go version that built the binary: go1.26.8
	Platform string // GOOS/GOARCH
}

// Read returns the running binary's build information.
var Read = sync.OnceValue(func() Info {
	info := Info{Version: "(devel)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if bi.Main.Version != "" {
			info.Version = bi.Main.Version
		}
		if bi.GoVersion != "" {
			info.Go = bi.GoVersion
		}
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				info.Revision = s.Value
			case "vcs.time":
				info.Time = s.Value
			case "vcs.modified":
				info.Modified = s.Value == "true"
			}
		}
	}
	if version != "" {
		info.Version = version
	}
	return info
})

// String is the one-line form: "v1.2.3 (rev 0123abcd…, 2026-12-06T17:00:00Z, modified) go1.26.8 linux/amd64".
func (i Info) String() string {
	var b strings.Builder
	b.WriteString(i.Version)
	var vcs []string
	if i.Revision != "" {
		vcs = append(vcs, "rev "+i.Revision)
	}
	if i.Time != "" {
		vcs = append(vcs, i.Time)
	}
	if i.Modified {
		vcs = append(vcs, "modified")
	}
	if len(vcs) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(vcs, ", "))
	}
	fmt.Fprintf(&b, " %s %s", i.Go, i.Platform)
	return b.String()
}
