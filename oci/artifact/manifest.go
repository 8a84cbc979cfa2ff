package artifact

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"sigs.k8s.io/yaml"

	"github.com/syscage/syscage/profile"
)

const (
	// MediaType identifies a seccomp profile artifact (KEP-6061). syscage sets it
	// as the config's media type and as the manifest's artifactType; pull accepts
	// either.
	MediaType = "application/vnd.cncf.seccomp-profile.config.v1+json"
	// LayerMediaType is the media type push gives the profile's layer. Pull
	// accepts any: CRI-O's examples push the JSON with oras's default layer type.
	LayerMediaType = "application/json"
	// LayerTitle is the layer's org.opencontainers.image.title, as the
	// security-profiles-operator names it.
	LayerTitle = "profile.json"

	// spoArtifactType is the artifactType (oras's "unknown") of what the
	// security-profiles-operator pushed before KEP-6061: layers holding a
	// SeccompProfile resource in YAML, named profile.yaml, or
	// profile-OS-ARCH[-VARIANT].yaml for one platform.
	spoArtifactType = "application/vnd.unknown.config.v1+json"

	// MaxManifestSize and MaxProfileSize bound what pull reads: a profile is a
	// few kilobytes, and a registry must not make syscage read without end.
	MaxManifestSize = 4 << 20
	MaxProfileSize  = 4 << 20
)

// ErrNotProfile is returned for an artifact that does not hold a seccomp
// profile: another media type, an image, an index, another kind of profile.
var ErrNotProfile = errors.New("not a seccomp profile artifact")

// ErrDigestMismatch is returned when a reference's tag does not point to the
// digest the reference pins.
var ErrDigestMismatch = errors.New("digest does not match the pinned one")

// Layout is the way an artifact holds its profile.
type Layout string

const (
	// LayoutKEP6061 is one layer of runtime-spec JSON.
	LayoutKEP6061 Layout = "kep-6061"
	// LayoutSPO is the security-profiles-operator's older layout: a
	// SeccompProfile resource in YAML.
	LayoutSPO Layout = "spo"
)

// Layer is the blob of a manifest that holds the profile.
type Layer struct {
	ocispec.Descriptor
	Layout Layout
}

// manifest is what ParseManifest reads of an image manifest or an index, both
// at once, so that an index served as something else is still recognised.
type manifest struct {
	SchemaVersion int                  `json:"schemaVersion"`
	MediaType     string               `json:"mediaType"`
	ArtifactType  string               `json:"artifactType"`
	Config        *ocispec.Descriptor  `json:"config"`
	Layers        []ocispec.Descriptor `json:"layers"`
	Manifests     []ocispec.Descriptor `json:"manifests"`
}

const dockerManifest = "application/vnd.docker.distribution.manifest.v2+json"

func isIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == "application/vnd.docker.distribution.manifest.list.v2+json"
}

// ParseManifest reads the manifest that ref resolved to: servedType is the media
// type the registry or layout gave it, data its bytes (already checked against
// its digest). It returns the layer that holds the profile, for platform where
// an artifact has one per platform.
func ParseManifest(ref, servedType string, data []byte, platform ocispec.Platform) (Layer, error) {
	var m manifest
	if err := json.Unmarshal(data, &m); err != nil {
		return Layer{}, fmt.Errorf("%s: reading its manifest: %w", ref, err)
	}
	mt := servedType
	if mt == "" || mt == "application/octet-stream" {
		mt = m.MediaType
	}
	switch {
	case isIndex(mt) || isIndex(m.MediaType) || m.Manifests != nil:
		var digests []string
		for _, d := range m.Manifests {
			digests = append(digests, d.Digest.String())
		}
		return Layer{}, fmt.Errorf("%s is an image index (%s), not one artifact: %w: pull one of its manifests by digest (%s)",
			ref, mt, ErrNotProfile, strings.Join(digests, ", "))
	case mt != "" && mt != ocispec.MediaTypeImageManifest && mt != dockerManifest:
		return Layer{}, fmt.Errorf("%s: %w: its media type is %q, want an image manifest (%s) whose type is %s",
			ref, ErrNotProfile, mt, ocispec.MediaTypeImageManifest, MediaType)
	case m.MediaType != "" && m.MediaType != mt:
		return Layer{}, fmt.Errorf("%s: the registry served it as %q, but it says it is %q", ref, mt, m.MediaType)
	case m.SchemaVersion != 2:
		return Layer{}, fmt.Errorf("%s: manifest schemaVersion %d: only 2 is an image manifest", ref, m.SchemaVersion)
	case m.Config == nil:
		return Layer{}, fmt.Errorf("%s: the manifest has no config", ref)
	}

	var l Layer
	switch {
	case m.Config.MediaType == MediaType || m.ArtifactType == MediaType:
		if len(m.Layers) != 1 {
			return Layer{}, fmt.Errorf("%s: a %s artifact has exactly one layer, this one has %d", ref, MediaType, len(m.Layers))
		}
		l = Layer{Descriptor: m.Layers[0], Layout: LayoutKEP6061}
	case m.ArtifactType == spoArtifactType || m.Config.MediaType == spoArtifactType:
		d, err := spoLayer(ref, m.Layers, platform)
		if err != nil {
			return Layer{}, err
		}
		l = Layer{Descriptor: d, Layout: LayoutSPO}
	default:
		found := m.ArtifactType
		if found == "" {
			found = m.Config.MediaType
		}
		return Layer{}, fmt.Errorf("%s: %w: its type is %q, want %q (KEP-6061), or a security-profiles-operator artifact",
			ref, ErrNotProfile, found, MediaType)
	}
	if err := l.Digest.Validate(); err != nil {
		return Layer{}, fmt.Errorf("%s: layer digest %q: %w", ref, l.Digest, err)
	}
	if l.Size < 0 || l.Size > MaxProfileSize {
		return Layer{}, fmt.Errorf("%s: the profile layer has %d bytes, syscage reads profiles of at most %d", ref, l.Size, MaxProfileSize)
	}
	return l, nil
}

// spoLayer picks the operator's layer for platform: the one bound to it (by its
// platform or by its name), else the one for every platform.
func spoLayer(ref string, layers []ocispec.Descriptor, platform ocispec.Platform) (ocispec.Descriptor, error) {
	name := "profile-" + platform.OS + "-" + platform.Architecture
	if platform.Variant != "" {
		name += "-" + platform.Variant
	}
	name += ".yaml"
	var titles []string
	for _, l := range layers {
		if p := l.Platform; p != nil && p.OS == platform.OS && p.Architecture == platform.Architecture && normVariant(p) == normVariant(&platform) {
			return l, nil
		}
		if l.Annotations[ocispec.AnnotationTitle] == name {
			return l, nil
		}
		titles = append(titles, fmt.Sprintf("%q", l.Annotations[ocispec.AnnotationTitle]))
	}
	for _, l := range layers {
		if l.Platform == nil && l.Annotations[ocispec.AnnotationTitle] == "profile.yaml" {
			return l, nil
		}
	}
	return ocispec.Descriptor{}, fmt.Errorf("%s: a security-profiles-operator artifact without a profile for %s/%s (its layers: %s)",
		ref, platform.OS, platform.Architecture, strings.Join(titles, ", "))
}

func normVariant(p *ocispec.Platform) string {
	if p.Architecture == "arm64" && p.Variant == "v8" {
		return ""
	}
	return p.Variant
}

// DecodeProfile reads the layer's bytes (already checked against its digest) as
// the profile. It returns the profile and its runtime-spec JSON: the layer as it
// is for KEP-6061, a SeccompProfile converted.
func DecodeProfile(ref string, l Layer, data []byte) (*specs.LinuxSeccomp, []byte, error) {
	var p *specs.LinuxSeccomp
	switch l.Layout {
	case LayoutKEP6061:
		if f := profile.DetectFormat(data); f != profile.FormatOCI {
			return nil, nil, fmt.Errorf("%s: the layer is a %s profile, but a %s artifact holds runtime-spec JSON", ref, f, MediaType)
		}
		var err error
		if p, err = profile.Parse(ref, data); err != nil {
			return nil, nil, err
		}
	case LayoutSPO:
		j, err := yaml.YAMLToJSON(data)
		if err != nil {
			return nil, nil, fmt.Errorf("%s: the layer is neither YAML nor JSON: %w", ref, err)
		}
		var kind struct {
			Kind string `json:"kind"`
		}
		if json.Unmarshal(j, &kind) == nil && kind.Kind != profile.SPOKind {
			return nil, nil, fmt.Errorf("%s: %w: it holds a %q of the security-profiles-operator, want a %s", ref, ErrNotProfile, kind.Kind, profile.SPOKind)
		}
		s, err := profile.ParseSPO(ref, j)
		if err != nil {
			return nil, nil, err
		}
		if p, err = s.OCI(ref); err != nil {
			return nil, nil, err
		}
		if data, err = profile.Marshal(p); err != nil {
			return nil, nil, err
		}
	default:
		return nil, nil, fmt.Errorf("%s: unknown layout %q", ref, l.Layout)
	}
	if err := validate(ref, p); err != nil {
		return nil, nil, err
	}
	return p, data, nil
}

// validate refuses a profile a runtime would refuse or misread.
func validate(name string, p *specs.LinuxSeccomp) error {
	var bad []string
	for _, f := range profile.Validate(p) {
		if f.Severity == profile.Error {
			bad = append(bad, name+": "+f.String())
		}
	}
	if len(bad) > 0 {
		return fmt.Errorf("%s\n(a runtime would refuse or misread this profile)", strings.Join(bad, "\n"))
	}
	return nil
}

// Pack builds the artifact of a runtime-spec profile: the config, the layer (data
// as it is) and the manifest that references both by digest. The same profile
// always gives the same manifest digest: nothing in it depends on time.
func Pack(name string, data []byte) (config, layer, manifestDesc ocispec.Descriptor, manifestData []byte, err error) {
	if f := profile.DetectFormat(data); f != profile.FormatOCI {
		err = fmt.Errorf("%s is a %s profile, but an artifact holds runtime-spec JSON: convert it first with 'syscage convert %s --to oci -o %s.oci.json'",
			name, f, name, strings.TrimSuffix(name, ".json"))
		return
	}
	var p *specs.LinuxSeccomp
	if p, err = profile.Parse(name, data); err != nil {
		return
	}
	if err = validate(name, p); err != nil {
		return
	}
	config = ocispec.Descriptor{MediaType: MediaType, Digest: digest.FromBytes(emptyConfig), Size: int64(len(emptyConfig))}
	layer = ocispec.Descriptor{
		MediaType:   LayerMediaType,
		Digest:      digest.FromBytes(data),
		Size:        int64(len(data)),
		Annotations: map[string]string{ocispec.AnnotationTitle: LayerTitle},
	}
	m := ocispec.Manifest{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: MediaType,
		Config:       config,
		Layers:       []ocispec.Descriptor{layer},
	}
	m.SchemaVersion = 2
	if manifestData, err = json.Marshal(m); err != nil {
		return
	}
	manifestDesc = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: MediaType, Digest: digest.FromBytes(manifestData), Size: int64(len(manifestData))}
	return
}

// emptyConfig is the config blob: the media type says what the artifact is, and
// the config has nothing to add (as the operator does).
var emptyConfig = []byte("{}")
