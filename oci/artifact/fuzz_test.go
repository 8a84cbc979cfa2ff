package artifact

import (
	"encoding/json"
	"testing"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/syscage/syscage/profile"
)

// FuzzPulled feeds what a registry serves, a manifest and a layer, to the
// parsers pull uses. They must never panic, and whatever they accept must be a
// valid runtime-spec profile.
func FuzzPulled(f *testing.F) {
	profileJSON := readFile(f, demoTar)
	_, _, _, m, err := Pack(demoTar, profileJSON)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(ocispec.MediaTypeImageManifest, m, profileJSON)
	spo, _ := json.Marshal(manifestOf(spoArtifactType, descOf(ocispec.MediaTypeEmptyJSON, []byte("{}"), ""), descOf(ocispec.MediaTypeImageLayer, []byte(spoYAML), "profile.yaml")))
	f.Add("", spo, []byte(spoYAML))
	index, _ := json.Marshal(ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{{Digest: "sha256:x"}}})
	f.Add(ocispec.MediaTypeImageIndex, index, []byte("{}"))
	f.Add("", []byte(`{"schemaVersion":2,"config":{"mediaType":"`+MediaType+`"},"layers":[{"digest":"sha256:`+
		"0000000000000000000000000000000000000000000000000000000000000000"+`","size":-1}]}`), []byte(`{"defaultAction":"SCMP_ACT_ALLOW"}`))
	f.Add(dockerManifest, []byte(`{"schemaVersion":2,"artifactType":"`+spoArtifactType+`","config":{},"layers":[]}`), []byte("kind: SelinuxProfile"))

	platform := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	f.Fuzz(func(t *testing.T, served string, manifest, layer []byte) {
		l, err := ParseManifest("ref", served, manifest, platform)
		if err != nil {
			return
		}
		if l.Size < 0 || l.Size > MaxProfileSize || l.Digest.Validate() != nil {
			t.Fatalf("accepted layer %+v", l.Descriptor)
		}
		p, data, err := DecodeProfile("ref", l, layer)
		if err != nil {
			return
		}
		back, err := profile.Parse("decoded", data)
		if err != nil {
			t.Fatalf("decoded profile does not parse: %v\n%s", err, data)
		}
		if len(back.Syscalls) != len(p.Syscalls) || back.DefaultAction != p.DefaultAction {
			t.Fatalf("decoded JSON is not the profile returned")
		}
		for _, finding := range profile.Validate(back) {
			if finding.Severity == profile.Error {
				t.Fatalf("accepted an invalid profile: %s", finding)
			}
		}
	})
}
