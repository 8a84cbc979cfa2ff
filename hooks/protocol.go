package hooks

import "github.com/syscage/syscage/bpf/host"

// The hook and the recorder (package recorder) speak one JSON line each over the
// recorder's socket (Config.Socket).

// Request is one line a hook sends the recorder.
type Request struct {
	Op          string            `json:"op"` // "track" or "flush"
	Container   string            `json:"container"`
	Annotations map[string]string `json:"annotations,omitempty"`
	CgroupID    uint64            `json:"cgroupId,omitempty"`
	CgroupDir   string            `json:"cgroupDir,omitempty"`
	Start       host.StartAt      `json:"start,omitempty"`
}

// Response is the recorder's one-line answer.
type Response struct {
	Error   string `json:"error,omitempty"`
	Retry   bool   `json:"retry,omitempty"` // the recorder is exiting: start another
	Profile string `json:"profile,omitempty"`
	Tracked bool   `json:"tracked,omitempty"`
}
