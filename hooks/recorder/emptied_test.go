package recorder

import (
	"io"
	"log/slog"
	"os/exec"
	"syscall"
	"testing"
	"time"

	"github.com/syscage/syscage/bpf/cgroups"
	"github.com/syscage/syscage/tests/testenv"
)

// The recorder is told the moment a tracked cgroup empties, with no poll behind
// it, and not before.
func TestEmptiedTellsWhenTheCgroupEmpties(t *testing.T) {
	testenv.RequireRoot(t)
	self, err := cgroups.Self()
	if err != nil {
		t.Fatal(err)
	}
	g, err := cgroups.Create(self, "syscage-test-emptied")
	if err != nil {
		t.Fatal(err)
	}
	defer func() { g.Kill(time.Second); g.Remove() }()
	f, err := g.Open()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sleep := exec.Command("sleep", "60")
	sleep.SysProcAttr = &syscall.SysProcAttr{UseCgroupFD: true, CgroupFD: int(f.Fd())}
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}

	ended := make(chan *container, 2)
	e := watchEmptied(slog.New(slog.NewTextHandler(io.Discard, nil)), func(c *container) { ended <- c })
	if e == nil {
		t.Fatal("inotify is not available")
	}
	defer e.close()
	c := &container{id: "emptied", dir: g.Path}
	e.add(c)
	select {
	case <-ended:
		t.Fatal("told that the cgroup emptied while its process runs")
	case <-time.After(100 * time.Millisecond):
	}
	sleep.Process.Kill()
	sleep.Wait()
	select {
	case got := <-ended:
		if got != c {
			t.Fatalf("told of %+v, want %+v", got, c)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("not told that the cgroup emptied")
	}
	if err := g.Remove(); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-ended:
		t.Fatalf("told twice: %+v", got)
	case <-time.After(100 * time.Millisecond):
	}
}
