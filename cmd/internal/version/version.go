// Package version says which version a syscage command is.
package version

import "runtime/debug"

// String is linked (a command's main.version, set at build time with -ldflags
// "-X main.version=…") or, when that is empty, the module's version from the
// build info, or "devel".
func String(linked string) string {
	if linked != "" {
		return linked
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return "devel"
}
