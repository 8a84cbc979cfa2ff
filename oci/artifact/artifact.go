package artifact

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"runtime"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"oras.land/oras-go/v2/content"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"
	"oras.land/oras-go/v2/registry"
	"oras.land/oras-go/v2/registry/remote"
	"oras.land/oras-go/v2/registry/remote/auth"
	"oras.land/oras-go/v2/registry/remote/credentials"
	"oras.land/oras-go/v2/registry/remote/retry"
)

// Options say where a reference points.
type Options struct {
	// Layout is an OCI image layout directory to use instead of a registry. A
	// reference is then TAG, TAG@DIGEST or @DIGEST (or DIGEST).
	Layout string
	// PlainHTTP talks to the registry over HTTP, not HTTPS: for a registry on
	// loopback.
	PlainHTTP bool
	// Platform picks the profile of an artifact that has one per platform (the
	// operator's older layout); nil means this machine's.
	Platform *ocispec.Platform
}

// ref is a parsed reference: where, which tag, which pinned digest.
type ref struct {
	name   string // as the user wrote it, for errors
	repo   registry.Reference
	tag    string
	digest digest.Digest
}

func parseRef(s string, opts Options) (ref, error) {
	r := ref{name: s}
	base, pin, pinned := strings.Cut(s, "@")
	if opts.Layout != "" && !pinned && strings.HasPrefix(s, "sha256:") {
		base, pin, pinned = "", s, true
	}
	if pinned {
		d, err := digest.Parse(pin)
		if err != nil {
			return ref{}, fmt.Errorf("reference %q: digest %q: %w: write it as sha256:<64 hex digits>", s, pin, err)
		}
		r.digest = d
	}
	if opts.Layout != "" {
		r.name = opts.Layout + ":" + s
		if base != "" {
			if err := (registry.Reference{Reference: base}).ValidateReferenceAsTag(); err != nil {
				return ref{}, fmt.Errorf("reference %q in OCI layout %s: %w: give TAG, TAG@DIGEST or @DIGEST", s, opts.Layout, err)
			}
			r.tag = base
		}
		return r, nil
	}
	repo, err := registry.ParseReference(base)
	if err != nil {
		return ref{}, fmt.Errorf("reference %q: %w: write it as REGISTRY/REPOSITORY:TAG, optionally @sha256:…, e.g. localhost:5000/profiles/web:v1", s, err)
	}
	r.tag, repo.Reference = repo.Reference, ""
	r.repo = repo
	return r, nil
}

// remoteRepository opens the repository of r, with the credentials of the
// Docker credential store (docker login, oras login).
func remoteRepository(r ref, opts Options) (*remote.Repository, error) {
	repo, err := remote.NewRepository(r.repo.Registry + "/" + r.repo.Repository)
	if err != nil {
		return nil, fmt.Errorf("reference %q: %w", r.name, err)
	}
	repo.PlainHTTP = opts.PlainHTTP
	client := &auth.Client{Client: retry.DefaultClient, Cache: auth.NewCache()}
	if store, err := credentials.NewStoreFromDocker(credentials.StoreOptions{}); err == nil {
		client.Credential = credentials.Credential(store)
	}
	repo.Client = client
	return repo, nil
}

// Push stores the runtime-spec profile data (read from name) as the artifact
// reference s names, and returns the manifest's descriptor.
func Push(ctx context.Context, s string, name string, data []byte, opts Options) (ocispec.Descriptor, error) {
	r, err := parseRef(s, opts)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	if r.digest != "" {
		return ocispec.Descriptor{}, fmt.Errorf("push %s: a pushed artifact is named by a tag; its digest is what push prints: drop @%s", r.name, r.digest)
	}
	if r.tag == "" {
		return ocispec.Descriptor{}, fmt.Errorf("push %s: name a tag, e.g. %s:v1", r.name, s)
	}
	config, layer, mdesc, mdata, err := Pack(name, data)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	var target storage
	if opts.Layout != "" {
		if target, err = oci.NewWithContext(ctx, opts.Layout); err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("opening OCI layout %s: %w", opts.Layout, err)
		}
	} else if target, err = remoteRepository(r, opts); err != nil {
		return ocispec.Descriptor{}, err
	}
	for _, b := range []struct {
		what string
		desc ocispec.Descriptor
		data []byte
	}{{"config", config, emptyConfig}, {"profile layer", layer, data}} {
		if ok, err := target.Exists(ctx, b.desc); err == nil && ok {
			continue
		}
		if err := target.Push(ctx, b.desc, bytes.NewReader(b.data)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			return ocispec.Descriptor{}, fmt.Errorf("push %s: uploading the %s (%s): %w%s", r.name, b.what, b.desc.Digest, err, hint(err))
		}
	}
	if err := pushManifest(ctx, target, mdesc, mdata, r.tag); err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("push %s: uploading the manifest: %w%s", r.name, err, hint(err))
	}
	return mdesc, nil
}

// Pulled is a profile pulled from an artifact.
type Pulled struct {
	// Manifest is the descriptor of the artifact's manifest; its digest pins it.
	Manifest ocispec.Descriptor
	// Layer is the blob the profile came from, and its layout.
	Layer Layer
	// Profile is the parsed, validated profile.
	Profile *specs.LinuxSeccomp
	// Data is the profile as runtime-spec JSON: the layer's bytes for a KEP-6061
	// artifact.
	Data []byte
}

// Pull fetches the profile of the artifact reference s names. Every blob is
// checked against its digest, a pinned digest must be the manifest's, and the
// artifact must hold a valid seccomp profile.
func Pull(ctx context.Context, s string, opts Options) (*Pulled, error) {
	r, err := parseRef(s, opts)
	if err != nil {
		return nil, err
	}
	if r.tag == "" && r.digest == "" {
		return nil, fmt.Errorf("pull %s: name a tag or a digest, e.g. %s:v1 or %s@sha256:…", r.name, s, s)
	}
	var target readOnlyStorage
	if opts.Layout != "" {
		if _, err := os.Stat(opts.Layout); err != nil {
			return nil, fmt.Errorf("pull %s: OCI layout: %w", r.name, err)
		}
		// Read-only: a pull never writes to the layout.
		if target, err = oci.NewFromFS(ctx, os.DirFS(opts.Layout)); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil, fmt.Errorf("pull %s: %s is not an OCI image layout (no oci-layout or index.json): %w", r.name, opts.Layout, err)
			}
			return nil, fmt.Errorf("pull %s: opening OCI layout %s: %w", r.name, opts.Layout, err)
		}
	} else if target, err = remoteRepository(r, opts); err != nil {
		return nil, err
	}

	reference := r.tag
	if r.digest != "" {
		reference = r.digest.String()
		if r.tag != "" {
			desc, err := target.Resolve(ctx, r.tag)
			if err != nil {
				return nil, fmt.Errorf("pull %s: resolving tag %s: %w%s", r.name, r.tag, err, hint(err))
			}
			if desc.Digest != r.digest {
				return nil, fmt.Errorf("pull %s: tag %s is %s, not the pinned %s: %w (pull @%s alone for the pinned artifact, or update the pin)",
					r.name, r.tag, desc.Digest, r.digest, ErrDigestMismatch, r.digest)
			}
		}
	}
	// fetchManifest checks the manifest against its digest: the pinned one, or the
	// one the registry gave for the tag.
	mdesc, mdata, err := fetchManifest(ctx, target, reference)
	if errors.Is(err, errdef.ErrNotFound) {
		return nil, fmt.Errorf("pull %s: no artifact has that tag or digest: %w", r.name, err)
	}
	if err != nil {
		return nil, fetchError(r, "the manifest", reference, err)
	}
	if r.digest != "" && mdesc.Digest != r.digest {
		return nil, fmt.Errorf("pull %s: the manifest served is %s: %w", r.name, mdesc.Digest, ErrDigestMismatch)
	}
	platform := ocispec.Platform{OS: runtime.GOOS, Architecture: runtime.GOARCH}
	if opts.Platform != nil {
		platform = *opts.Platform
	}
	layer, err := ParseManifest(r.name, mdesc.MediaType, mdata, platform)
	if err != nil {
		return nil, fmt.Errorf("pull %w", err)
	}
	ldata, err := content.FetchAll(ctx, target, layer.Descriptor)
	if err != nil {
		return nil, fetchError(r, "the profile layer", layer.Digest.String(), err)
	}
	p, data, err := DecodeProfile(r.name, layer, ldata)
	if err != nil {
		return nil, fmt.Errorf("pull %w", err)
	}
	return &Pulled{Manifest: mdesc, Layer: layer, Profile: p, Data: data}, nil
}

// fetchError says what could not be fetched, and whether it was refused for its
// content.
func fetchError(r ref, what, which string, err error) error {
	if errors.Is(err, content.ErrMismatchedDigest) || errors.Is(err, content.ErrTrailingData) {
		return fmt.Errorf("pull %s: fetching %s (%s): what was served does not match its digest, it was tampered with or corrupted: %w", r.name, what, which, err)
	}
	return fmt.Errorf("pull %s: fetching %s (%s): %w%s", r.name, what, which, err, hint(err))
}

// hint says how to reach a registry that speaks plain HTTP, which Go's client
// only reports in words.
func hint(err error) string {
	if strings.Contains(err.Error(), "server gave HTTP response to HTTPS client") {
		return ": the registry speaks plain HTTP: add --plain-http"
	}
	return ""
}

// storage and readOnlyStorage are what push and pull need of a registry's
// repository or of an OCI layout. syscage calls them directly rather than through
// oras-go's top-level package, whose init compiles a regular expression that
// would cost every run of syscage, hooks included.
type storage interface {
	content.Storage
	content.TagResolver
}

type readOnlyStorage interface {
	content.ReadOnlyStorage
	content.Resolver
}

// pushManifest stores the manifest and tags it: in one request where the
// registry protocol allows.
func pushManifest(ctx context.Context, t storage, desc ocispec.Descriptor, data []byte, tag string) error {
	if rp, ok := t.(registry.ReferencePusher); ok {
		return rp.PushReference(ctx, desc, bytes.NewReader(data), tag)
	}
	if err := t.Push(ctx, desc, bytes.NewReader(data)); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
		return err
	}
	return t.Tag(ctx, desc, tag)
}

// fetchManifest fetches what reference names, at most MaxManifestSize bytes, and
// checks it against its digest.
func fetchManifest(ctx context.Context, t readOnlyStorage, reference string) (ocispec.Descriptor, []byte, error) {
	if rf, ok := t.(registry.ReferenceFetcher); ok {
		desc, rc, err := rf.FetchReference(ctx, reference)
		if err != nil {
			return ocispec.Descriptor{}, nil, err
		}
		defer rc.Close()
		if desc.Size > MaxManifestSize {
			return ocispec.Descriptor{}, nil, fmt.Errorf("the manifest has %d bytes, syscage reads at most %d", desc.Size, MaxManifestSize)
		}
		data, err := content.ReadAll(rc, desc)
		return desc, data, err
	}
	desc, err := t.Resolve(ctx, reference)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	if desc.Size > MaxManifestSize {
		return ocispec.Descriptor{}, nil, fmt.Errorf("the manifest has %d bytes, syscage reads at most %d", desc.Size, MaxManifestSize)
	}
	data, err := content.FetchAll(ctx, t, desc)
	return desc, data, err
}
