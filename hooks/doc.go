// Package hooks is syscage's OCI hook: `syscage-hook hook` (or `syscage hook`)
// run by podman, CRI-O or runc at a container's prestart and poststop, and the
// syscage-runc wrapper that adds it for runtimes without hooks.d. It holds the
// hook's config, the recording annotations and the protocol the hook speaks to
// the one recorder process on the host (package recorder), which it starts on
// demand and which writes each annotated container's profile, confined to the
// directories the config allows. It links no eBPF: the hook runs twice per
// container.
package hooks
