// Package artifact stores seccomp profiles as OCI artifacts, in a registry or in an
// OCI image layout directory, in the layout of KEP-6061: an image manifest whose
// config (and artifactType) has the media type
// application/vnd.cncf.seccomp-profile.config.v1+json, and whose single layer is
// the profile's runtime-spec JSON, referenced by digest.
//
// Pull trusts nothing the registry serves: every blob is checked against its
// digest and size, a digest the reference pins must be the manifest's, the
// manifest must describe a seccomp profile, and the profile must parse and be one
// a runtime would accept. It also reads the security-profiles-operator's older
// artifacts, whose layer is a SeccompProfile resource in YAML.
//
// It uses oras-go for the registry protocol (authentication from the Docker
// credential store, retries) and the image layout; what the artifact means is
// decided here, in ParseManifest and DecodeProfile, which are pure functions so
// that they can be fuzzed.
package artifact
