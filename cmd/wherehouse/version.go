package main

import (
	"fmt"
	"io"
	"runtime"
	"runtime/debug"
)

// version is set at build time: -ldflags "-X main.version=v1.2.3".
var version = "dev"

// buildInfo describes this binary: version, commit and Go version.
func buildInfo() string {
	commit, dirty := "", ""
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			switch s.Key {
			case "vcs.revision":
				commit = s.Value
				if len(commit) > 12 {
					commit = commit[:12]
				}
			case "vcs.modified":
				if s.Value == "true" {
					dirty = "-dirty"
				}
			}
		}
	}
	if commit == "" {
		commit = "unknown"
	}
	return fmt.Sprintf("wherehouse %s (commit %s%s, %s, %s/%s)", version, commit, dirty, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func runVersion(stdout io.Writer) error {
	_, err := fmt.Fprintln(stdout, buildInfo())
	return err
}
