package kubeapi

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// A SyscallNodeResult carries each container's profile as ProfileData, its JSON
// gzipped and base64-encoded: one string, where the profile itself is a tree of
// hundreds of JSON values that the API server decodes, prunes against the
// schema, merges, tracks the fields of and encodes again at every write. At fleet
// scale a node result's write is the API server's main cost. The types hide
// it: marshalling a SyscallNodeResult packs the profiles, unmarshalling one
// unpacks them into Profile (and takes results whose profiles are JSON, as in a
// recording's status, as they are).

type nodeResultJSON SyscallNodeResult

// MarshalJSON packs each container's Profile into ProfileData.
func (r SyscallNodeResult) MarshalJSON() ([]byte, error) {
	out := nodeResultJSON(r)
	out.Result.Containers = make([]ContainerResult, len(r.Result.Containers))
	for i, c := range r.Result.Containers {
		if c.Profile != nil {
			data, err := packProfile(c.Profile)
			if err != nil {
				return nil, fmt.Errorf("container %s of pod %s: %w", c.Container, c.Pod, err)
			}
			c.Profile, c.ProfileData = nil, data
		}
		out.Result.Containers[i] = c
	}
	if r.Result.Containers == nil {
		out.Result.Containers = nil
	}
	return json.Marshal(out)
}

// UnmarshalJSON unpacks each container's ProfileData into Profile.
func (r *SyscallNodeResult) UnmarshalJSON(b []byte) error {
	var in nodeResultJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	for i := range in.Result.Containers {
		c := &in.Result.Containers[i]
		if c.ProfileData == "" {
			continue
		}
		p, err := unpackProfile(c.ProfileData)
		if err != nil {
			return fmt.Errorf("the profile of container %s of pod %s: %w", c.Container, c.Pod, err)
		}
		c.Profile, c.ProfileData = p, ""
	}
	*r = SyscallNodeResult(in)
	return nil
}

func packProfile(p *specs.LinuxSeccomp) (string, error) {
	data, err := json.Marshal(p)
	if err != nil {
		return "", err
	}
	var b bytes.Buffer
	z, _ := gzip.NewWriterLevel(&b, gzip.BestSpeed)
	z.Write(data)
	if err := z.Close(); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b.Bytes()), nil
}

// maxProfileData bounds what one packed profile may unpack to.
const maxProfileData = 16 << 20

func unpackProfile(s string) (*specs.LinuxSeccomp, error) {
	raw, err := base64.StdEncoding.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("profileData is not base64: %w", err)
	}
	z, err := gzip.NewReader(bytes.NewReader(raw))
	if err != nil {
		return nil, fmt.Errorf("profileData is not gzip: %w", err)
	}
	data, err := io.ReadAll(io.LimitReader(z, maxProfileData+1))
	if err != nil {
		return nil, fmt.Errorf("profileData: %w", err)
	}
	if len(data) > maxProfileData {
		return nil, fmt.Errorf("profileData unpacks to more than %d bytes", maxProfileData)
	}
	var p specs.LinuxSeccomp
	if err := json.Unmarshal(data, &p); err != nil {
		return nil, fmt.Errorf("profileData: %w", err)
	}
	return &p, nil
}
