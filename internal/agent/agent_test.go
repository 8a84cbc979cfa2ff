package agent

import (
	"os"
	"path/filepath"
	"testing"
)

func TestFindCgroup(t *testing.T) {
	mnt := t.TempDir()
	uid, id := "0a1b-2c3d", "5f6e7d"
	for _, d := range []string{
		"system.slice/containerd.service",
		"kubepods/besteffort/pod0a1b-2c3d/aaaa", // the pod's sandbox
		"kubepods/besteffort/pod0a1b-2c3d/" + id,
		"kubepods/burstable/podffff/" + id + "0", // another pod, a longer ID
		"kubepods.slice/kubepods-burstable.slice/kubepods-burstable-pod0a1b_2c3d.slice/cri-containerd-" + id + ".scope",
	} {
		if err := os.MkdirAll(filepath.Join(mnt, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	got, err := findCgroupIn(mnt, uid, id)
	if err != nil {
		t.Fatal(err)
	}
	// cgroupfs's layout is walked first (lexical order); either is the container.
	if want := filepath.Join(mnt, "kubepods/besteffort/pod0a1b-2c3d", id); got != want {
		t.Errorf("got %s, want %s", got, want)
	}
	os.RemoveAll(filepath.Join(mnt, "kubepods"))
	got, err = findCgroupIn(mnt, uid, id)
	if err != nil || filepath.Base(got) != "cri-containerd-"+id+".scope" {
		t.Errorf("systemd layout: %s, %v", got, err)
	}
	if _, err := findCgroupIn(mnt, "nope", id); err == nil {
		t.Error("found a container in a pod it is not in")
	}
}

func TestParsePod(t *testing.T) {
	p, err := parsePod([]byte(`{"metadata":{"name":"web-1","namespace":"ns","uid":"u1","labels":{"app":"web"}},
	 "status":{"containerStatuses":[
	  {"name":"app","containerID":"containerd://abc","state":{"running":{"startedAt":"x"}}},
	  {"name":"side","containerID":"containerd://def","state":{"terminated":{"exitCode":0}}},
	  {"name":"new","state":{"waiting":{}}}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	if p.ns != "ns" || p.name != "web-1" || p.uid != "u1" || p.labels["app"] != "web" {
		t.Errorf("pod %+v", p)
	}
	if len(p.running) != 1 || p.running["abc"] != "app" {
		t.Errorf("running containers %v, want only abc (app)", p.running)
	}
}
