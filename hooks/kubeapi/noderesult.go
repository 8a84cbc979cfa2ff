package kubeapi

import (
	"bytes"
	"compress/gzip"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"sync"

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
	return (*Unpacker)(nil).UnmarshalNodeResult(b, r)
}

// An Unpacker unpacks the profiles of node results, each distinct packed
// profile once: the nodes of a fleet mostly publish the same few profiles for a
// container, and a reader of thousands of results would otherwise unpack (gunzip
// and decode) each of them. The profiles it returns are shared between the
// results it reads: read them, never change them. The zero value is ready; a
// nil Unpacker unpacks every profile anew.
type Unpacker struct {
	mu       sync.Mutex
	unpacked map[string]*specs.LinuxSeccomp // by packed profile
}

// maxUnpacked bounds the distinct profiles an Unpacker keeps (a few KiB each);
// past it, profiles are unpacked anew.
const maxUnpacked = 4096

func (u *Unpacker) unpack(s string) (*specs.LinuxSeccomp, error) {
	if u == nil {
		return unpackProfile(s)
	}
	u.mu.Lock()
	p, ok := u.unpacked[s]
	u.mu.Unlock()
	if ok {
		return p, nil
	}
	p, err := unpackProfile(s)
	if err != nil {
		return nil, err
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if u.unpacked == nil {
		u.unpacked = map[string]*specs.LinuxSeccomp{}
	}
	if len(u.unpacked) < maxUnpacked {
		u.unpacked[s] = p
	}
	return p, nil
}

// UnmarshalNodeResult decodes a SyscallNodeResult, as json.Unmarshal does, with
// its profiles unpacked through u.
func (u *Unpacker) UnmarshalNodeResult(b []byte, r *SyscallNodeResult) error {
	var in nodeResultJSON
	if err := json.Unmarshal(b, &in); err != nil {
		return err
	}
	for i := range in.Result.Containers {
		c := &in.Result.Containers[i]
		if c.ProfileData == "" {
			continue
		}
		p, err := u.unpack(c.ProfileData)
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
	z := gzipWriters.Get().(*gzip.Writer)
	defer gzipWriters.Put(z)
	z.Reset(&b)
	z.Write(data)
	if err := z.Close(); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(b.Bytes()), nil
}

// gzipWriters are reused: a new one allocates some 800 KB of compressor
// state, which dwarfed the compression of a profile of a few KB itself (an
// agent publishes ten of them at a time).
var gzipWriters = sync.Pool{New: func() any {
	z, _ := gzip.NewWriterLevel(nil, gzip.BestSpeed)
	return z
}}

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
