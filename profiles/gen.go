package profiles

import "embed"

// The profiles are evaluated from containerd's and moby's own Go code for each
// architecture; see internal/gendefault.
//go:generate go run ./internal/gendefault -o .

// FS holds the generated profiles, by file name.
//
//go:embed *.json
var FS embed.FS
