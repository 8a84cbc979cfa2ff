package profile

// The syscall tables are derived from golang.org/x/sys and the kernel's x32 header
// rather than written by hand; see internal/gensyscalls.
//go:generate go run ./internal/gensyscalls -o zsyscalls.go
