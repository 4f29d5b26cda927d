// Package buildinfo describes the running binary: the version it was given
// at link time and what the Go toolchain recorded in it (Go version,
// platform, VCS revision). The server answers it at GET /api/version and
// the CLI prints it in `gatehouse version`.
package buildinfo

import (
	"runtime"
	"runtime/debug"
	"time"

	"github.com/gatehouse/gatehouse"
)

// Read describes this binary. version is the linker-set version (-X); when
// it is empty or "dev" and the binary was built by `go install module@vX`,
// the module's version is used instead.
func Read(version string) gatehouse.VersionInfo {
	v := gatehouse.VersionInfo{
		Version:   version,
		GoVersion: runtime.Version(),
		Platform:  runtime.GOOS + "/" + runtime.GOARCH,
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		if v.Version == "" {
			v.Version = "dev"
		}
		return v
	}
	if (v.Version == "" || v.Version == "dev") && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		v.Version = bi.Main.Version
	}
	if v.Version == "" {
		v.Version = "dev"
	}
	if bi.GoVersion != "" {
		v.GoVersion = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			if t, err := time.Parse(time.RFC3339, s.Value); err == nil {
				v.RevisionTime = t.UTC()
			}
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	return v
}
