// Package hooks is syscage's OCI hook: `syscage hook` run by podman, CRI-O or runc
// at a container's prestart and poststop, and the one recorder process (`syscage
// daemon`) that records every annotated container on the host and writes each
// one's profile, confined to the directories the hook's own config allows.
package hooks
