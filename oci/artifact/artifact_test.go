package artifact

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"oras.land/oras-go/v2"
	"oras.land/oras-go/v2/content/oci"
	"oras.land/oras-go/v2/errdef"

	"github.com/syscage/syscage/profile"
)

func readFile(t testing.TB, path string) []byte {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return data
}

var (
	demoTar = filepath.Join("..", "..", "profiles", "demo-tar.json")
	demoSh  = filepath.Join("..", "..", "profiles", "demo-sh.json")
)

func TestPushPullLayout(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "layout")
	opts := Options{Layout: dir}
	data := readFile(t, demoTar)

	desc, err := Push(ctx, "v1", demoTar, data, opts)
	if err != nil {
		t.Fatal(err)
	}
	// The same profile gives the same digest: nothing in the manifest is dated.
	again, err := Push(ctx, "v1-again", demoTar, data, opts)
	if err != nil {
		t.Fatal(err)
	}
	if again.Digest != desc.Digest {
		t.Errorf("pushing the same profile twice gave %s and %s", desc.Digest, again.Digest)
	}

	for _, ref := range []string{"v1", "@" + desc.Digest.String(), desc.Digest.String(), "v1@" + desc.Digest.String()} {
		t.Run(ref, func(t *testing.T) {
			got, err := Pull(ctx, ref, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got.Data, data) {
				t.Errorf("pulled profile differs from the pushed one:\n%s", cmp.Diff(string(data), string(got.Data)))
			}
			if got.Manifest.Digest != desc.Digest || got.Layer.Layout != LayoutKEP6061 || got.Layer.Digest != digest.FromBytes(data) {
				t.Errorf("manifest %s, layer %s (%s); want %s, %s", got.Manifest.Digest, got.Layer.Digest, got.Layer.Layout, desc.Digest, digest.FromBytes(data))
			}
		})
	}

	// The manifest is the KEP-6061 layout.
	m := readManifest(t, dir, desc.Digest)
	if m.Config.MediaType != MediaType || m.ArtifactType != MediaType || len(m.Layers) != 1 ||
		m.Layers[0].MediaType != LayerMediaType || m.Layers[0].Annotations[ocispec.AnnotationTitle] != LayerTitle {
		t.Errorf("manifest is not in the KEP-6061 layout: %+v", m)
	}
}

func readManifest(t *testing.T, dir string, d digest.Digest) ocispec.Manifest {
	t.Helper()
	var m ocispec.Manifest
	if err := json.Unmarshal(readFile(t, blobPath(dir, d)), &m); err != nil {
		t.Fatal(err)
	}
	return m
}

func blobPath(dir string, d digest.Digest) string {
	return filepath.Join(dir, "blobs", d.Algorithm().String(), d.Encoded())
}

func TestPullPinned(t *testing.T) {
	ctx := context.Background()
	opts := Options{Layout: t.TempDir()}
	a, err := Push(ctx, "v1", demoTar, readFile(t, demoTar), opts)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Push(ctx, "v2", demoSh, readFile(t, demoSh), opts)
	if err != nil {
		t.Fatal(err)
	}
	_, err = Pull(ctx, "v1@"+b.Digest.String(), opts)
	if !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("v1 pinned to v2's digest: got %v, want %v", err, ErrDigestMismatch)
	}
	for _, want := range []string{"tag v1 is " + a.Digest.String(), "not the pinned " + b.Digest.String()} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not say %q", err, want)
		}
	}
	if _, err := Pull(ctx, "@sha256:"+strings.Repeat("0", 64), opts); err == nil {
		t.Error("a digest that is not in the layout was pulled")
	}
	if _, err := Pull(ctx, "v1@sha256:abc", opts); err == nil || !strings.Contains(err.Error(), "sha256:<64 hex digits>") {
		t.Errorf("a malformed digest: got %v", err)
	}
}

func TestPullTampered(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	opts := Options{Layout: dir}
	data := readFile(t, demoTar)
	desc, err := Push(ctx, "v1", demoTar, data, opts)
	if err != nil {
		t.Fatal(err)
	}
	// Same size, one syscall renamed: only the digest can tell.
	tampered := bytes.Replace(data, []byte(`"getdents64"`), []byte(`"getdents32"`), 1)
	if bytes.Equal(tampered, data) {
		t.Fatal("the test profile has no getdents64 to tamper with")
	}
	layer := blobPath(dir, digest.FromBytes(data))
	if err := os.WriteFile(layer, tampered, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Pull(ctx, "v1", opts)
	if err == nil || !strings.Contains(err.Error(), "digest") {
		t.Fatalf("tampered layer: got %v, want a digest mismatch", err)
	}
	// A tampered manifest is refused too.
	os.WriteFile(layer, data, 0o644)
	mpath := blobPath(dir, desc.Digest)
	m := readFile(t, mpath)
	if err := os.WriteFile(mpath, bytes.Replace(m, []byte(`"size":2`), []byte(`"size":3`), 1), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := Pull(ctx, "@"+desc.Digest.String(), opts); err == nil {
		t.Fatal("tampered manifest was pulled")
	}
}

// storeManifest stores blobs and a manifest in a layout under tag, as another
// tool would have pushed them.
func storeManifest(t *testing.T, dir, tag string, m ocispec.Manifest, blobs ...[]byte) {
	t.Helper()
	ctx := context.Background()
	store, err := oci.New(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, b := range blobs {
		if _, err := oras.PushBytes(ctx, store, "application/octet-stream", b); err != nil && !errors.Is(err, errdef.ErrAlreadyExists) {
			t.Fatal(err)
		}
	}
	data, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := oras.TagBytes(ctx, store, m.MediaType, data, tag); err != nil {
		t.Fatal(err)
	}
}

func descOf(mediaType string, data []byte, title string) ocispec.Descriptor {
	d := ocispec.Descriptor{MediaType: mediaType, Digest: digest.FromBytes(data), Size: int64(len(data))}
	if title != "" {
		d.Annotations = map[string]string{ocispec.AnnotationTitle: title}
	}
	return d
}

func manifestOf(artifactType string, config ocispec.Descriptor, layers ...ocispec.Descriptor) ocispec.Manifest {
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, ArtifactType: artifactType, Config: config, Layers: layers}
	m.SchemaVersion = 2
	return m
}

const spoYAML = `apiVersion: security-profiles-operator.x-k8s.io/v1beta1
kind: SeccompProfile
metadata:
  name: web
spec:
  defaultAction: SCMP_ACT_ERRNO
  architectures: [SCMP_ARCH_X86_64]
  syscalls:
  - action: SCMP_ACT_ALLOW
    names: [read, write, exit_group]
`

func TestPullOtherLayouts(t *testing.T) {
	ctx := context.Background()
	profileJSON := readFile(t, demoTar)
	empty := []byte("{}")
	spo := []byte(spoYAML)
	selinux := []byte("apiVersion: security-profiles-operator.x-k8s.io/v1alpha2\nkind: SelinuxProfile\nmetadata: {name: x}\nspec: {}\n")
	imageConfig := []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`)

	tests := []struct {
		name    string
		m       ocispec.Manifest
		blobs   [][]byte
		layout  Layout
		wantErr []string // substrings; none means it pulls
	}{{
		// CRI-O's examples: oras push --config config.json:MEDIATYPE seccomp.json
		name:   "crio",
		m:      manifestOf("", descOf(MediaType, empty, ""), descOf(ocispec.MediaTypeImageLayer, profileJSON, "seccomp.json")),
		blobs:  [][]byte{empty, profileJSON},
		layout: LayoutKEP6061,
	}, {
		// KEP-6061 with the empty config, the type in artifactType only.
		name:   "artifact-type",
		m:      manifestOf(MediaType, descOf(ocispec.MediaTypeEmptyJSON, empty, ""), descOf(LayerMediaType, profileJSON, "profile.json")),
		blobs:  [][]byte{empty, profileJSON},
		layout: LayoutKEP6061,
	}, {
		// spoc push before KEP-6061: a SeccompProfile in profile.yaml.
		name:   "spo",
		m:      manifestOf(spoArtifactType, descOf(ocispec.MediaTypeEmptyJSON, empty, ""), descOf(ocispec.MediaTypeImageLayer, spo, "profile.yaml")),
		blobs:  [][]byte{empty, spo},
		layout: LayoutSPO,
	}, {
		name:    "spo-selinux",
		m:       manifestOf(spoArtifactType, descOf(ocispec.MediaTypeEmptyJSON, empty, ""), descOf(ocispec.MediaTypeImageLayer, selinux, "profile.yaml")),
		blobs:   [][]byte{empty, selinux},
		wantErr: []string{":spo-selinux: ", `"SelinuxProfile"`, "want a SeccompProfile"},
	}, {
		name:    "image",
		m:       manifestOf("", descOf(ocispec.MediaTypeImageConfig, imageConfig, ""), descOf(ocispec.MediaTypeImageLayerGzip, profileJSON, "")),
		blobs:   [][]byte{imageConfig, profileJSON},
		wantErr: []string{":image: ", "not a seccomp profile", `its type is "` + ocispec.MediaTypeImageConfig + `"`, `want "` + MediaType + `"`},
	}, {
		name:    "two-layers",
		m:       manifestOf(MediaType, descOf(MediaType, empty, ""), descOf(LayerMediaType, profileJSON, ""), descOf(LayerMediaType, spo, "")),
		blobs:   [][]byte{empty, profileJSON, spo},
		wantErr: []string{"exactly one layer, this one has 2"},
	}, {
		name:    "docker-profile",
		m:       manifestOf(MediaType, descOf(MediaType, empty, ""), descOf(LayerMediaType, []byte(`{"defaultAction":"SCMP_ACT_ERRNO","archMap":[]}`), "")),
		blobs:   [][]byte{empty, []byte(`{"defaultAction":"SCMP_ACT_ERRNO","archMap":[]}`)},
		wantErr: []string{"the layer is a docker profile"},
	}, {
		name:    "invalid-profile",
		m:       manifestOf(MediaType, descOf(MediaType, empty, ""), descOf(LayerMediaType, []byte(`{"defaultAction":"SCMP_ACT_NOPE"}`), "")),
		blobs:   [][]byte{empty, []byte(`{"defaultAction":"SCMP_ACT_NOPE"}`)},
		wantErr: []string{":invalid-profile: ", "SCMP_ACT_NOPE"},
	}}
	dir := t.TempDir()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			storeManifest(t, dir, tt.name, tt.m, tt.blobs...)
			got, err := Pull(ctx, tt.name, Options{Layout: dir, Platform: &ocispec.Platform{OS: "linux", Architecture: "amd64"}})
			if tt.wantErr != nil {
				if err == nil {
					t.Fatal("pulled, want an error")
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error %q does not say %q", err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got.Layer.Layout != tt.layout {
				t.Errorf("layout %s, want %s", got.Layer.Layout, tt.layout)
			}
			if _, err := profile.Parse("pulled", got.Data); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestParseManifest(t *testing.T) {
	amd64 := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := ocispec.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}
	layer := func(title string, p *ocispec.Platform) ocispec.Descriptor {
		d := descOf(ocispec.MediaTypeImageLayer, []byte(title), title)
		d.Platform = p
		return d
	}
	spo := manifestOf(spoArtifactType, descOf(ocispec.MediaTypeEmptyJSON, []byte("{}"), ""),
		layer("profile.yaml", nil), layer("profile-linux-amd64.yaml", nil), layer("arm", &ocispec.Platform{OS: "linux", Architecture: "arm64"}))
	tests := []struct {
		name     string
		served   string
		m        any
		platform ocispec.Platform
		title    string
		wantErr  string
	}{
		{name: "spo-by-name", m: spo, platform: amd64, title: "profile-linux-amd64.yaml"},
		{name: "spo-by-platform", m: spo, platform: arm64, title: "arm"},
		{name: "spo-any", m: spo, platform: ocispec.Platform{OS: "linux", Architecture: "riscv64"}, title: "profile.yaml"},
		{name: "spo-none", m: manifestOf(spoArtifactType, descOf(ocispec.MediaTypeEmptyJSON, []byte("{}"), ""), layer("profile-linux-s390x.yaml", nil)), platform: amd64,
			wantErr: `without a profile for linux/amd64 (its layers: "profile-linux-s390x.yaml")`},
		{name: "index", served: ocispec.MediaTypeImageIndex, m: ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{descOf(ocispec.MediaTypeImageManifest, []byte("x"), "")}},
			wantErr: "is an image index"},
		{name: "served-as-other", served: dockerManifest, m: manifestOf(MediaType, descOf(MediaType, []byte("{}"), ""), layer("p", nil)),
			wantErr: "served it as"},
		{name: "docker-manifest", served: dockerManifest, m: map[string]any{"schemaVersion": 2, "config": descOf(MediaType, []byte("{}"), ""), "layers": []any{layer("p", nil)}},
			title: "p"},
		{name: "blob", served: "application/json", m: map[string]any{}, wantErr: `its media type is "application/json"`},
		{name: "schema1", m: map[string]any{"schemaVersion": 1}, wantErr: "schemaVersion 1"},
		{name: "huge-layer", m: manifestOf(MediaType, descOf(MediaType, []byte("{}"), ""), ocispec.Descriptor{MediaType: LayerMediaType, Digest: digest.FromString("x"), Size: 1 << 40}),
			wantErr: "at most"},
		{name: "bad-digest", m: manifestOf(MediaType, descOf(MediaType, []byte("{}"), ""), ocispec.Descriptor{MediaType: LayerMediaType, Digest: "sha256:../../etc", Size: 1}),
			wantErr: "layer digest"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			data, err := json.Marshal(tt.m)
			if err != nil {
				t.Fatal(err)
			}
			l, err := ParseManifest("ref", tt.served, data, tt.platform)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("got %v, want an error saying %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := l.Annotations[ocispec.AnnotationTitle]; got != tt.title {
				t.Errorf("layer %q, want %q", got, tt.title)
			}
		})
	}
}

func TestPushRefuses(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	docker := filepath.Join(dir, "docker.json")
	os.WriteFile(docker, []byte(`{"defaultAction":"SCMP_ACT_ERRNO","archMap":[]}`), 0o644)
	tests := []struct {
		name, ref, file string
		opts            Options
		want            string
	}{
		{"digest", "v1@sha256:" + strings.Repeat("a", 64), demoTar, Options{Layout: dir}, "drop @sha256:"},
		{"no-tag", "localhost:5000/p", demoTar, Options{}, "name a tag"},
		{"bad-ref", "Web", demoTar, Options{}, "REGISTRY/REPOSITORY:TAG"},
		{"docker", "v1", docker, Options{Layout: dir}, "convert it first"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Push(ctx, tt.ref, tt.file, readFile(t, tt.file), tt.opts)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("got %v, want an error saying %q", err, tt.want)
			}
		})
	}
}

func TestPullNotLayout(t *testing.T) {
	_, err := Pull(context.Background(), "v1", Options{Layout: t.TempDir()})
	if err == nil || !strings.Contains(err.Error(), "not an OCI image layout") {
		t.Fatalf("got %v", err)
	}
}
