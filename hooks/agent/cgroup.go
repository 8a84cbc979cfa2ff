package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"path/filepath"
	"strings"

	"github.com/syscage/syscage/bpf/cgroups"
)

// findCgroup finds a running container's cgroup2 directory below the kubelet's
// pod cgroup: kubepods/<qos>/pod<uid>/<id> with the cgroupfs driver,
// kubepods.slice/…/kubepods-<qos>-pod<uid_>.slice/cri-containerd-<id>.scope
// with systemd's.
func findCgroup(podUID, id string) (string, error) {
	mnt, err := cgroups.Mount()
	if err != nil {
		return "", err
	}
	return findCgroupIn(mnt, podUID, id)
}

func findCgroupIn(mnt, podUID, id string) (string, error) {
	uids := []string{podUID, strings.ReplaceAll(podUID, "-", "_")}
	var found string
	stop := errors.New("found")
	err := filepath.WalkDir(mnt, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		rel, _ := filepath.Rel(mnt, p)
		depth := strings.Count(rel, string(filepath.Separator))
		base := d.Name()
		switch {
		case p == mnt:
			return nil
		case depth == 0 && !strings.HasPrefix(base, "kubepods"):
			return fs.SkipDir
		case strings.Contains(base, id) && inPod(rel, uids):
			found = p
			return stop
		case depth >= 4:
			return fs.SkipDir
		}
		return nil
	})
	if found != "" {
		return found, nil
	}
	if err != nil && err != stop {
		return "", err
	}
	return "", fmt.Errorf("no cgroup of container %s below %s", id, filepath.Join(mnt, "kubepods*"))
}

func inPod(rel string, uids []string) bool {
	for _, u := range uids {
		if strings.Contains(rel, "pod"+u) {
			return true
		}
	}
	return false
}
