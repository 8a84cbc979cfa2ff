package cgroups

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"testing/iotest"

	"github.com/syscage/syscage/tests/testenv"
)

// Samples in the layout of real /proc/self/mountinfo tables.
const (
	mountinfoV2 = `22 27 0:21 / /proc rw,nosuid,nodev,noexec,relatime shared:5 - proc proc rw
23 27 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:6 - sysfs sysfs rw
24 27 0:5 / /dev rw,nosuid,relatime shared:2 - devtmpfs udev rw,size=8123456k,nr_inodes=2030864,mode=755,inode64
27 1 259:2 / / rw,relatime shared:1 - ext4 /dev/nvme0n1p2 rw,errors=remount-ro
30 23 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime shared:9 - cgroup2 cgroup2 rw,nsdelegate,memory_recursiveprot
31 23 0:27 / /sys/fs/pstore rw,nosuid,nodev,noexec,relatime shared:10 - pstore pstore rw
`
	mountinfoHybrid = `22 27 0:21 / /proc rw,relatime - proc proc rw
23 27 0:22 / /sys rw,relatime - sysfs sysfs rw
27 1 254:0 / / rw,relatime - ext4 /dev/vda rw,discard
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
33 31 0:30 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
36 31 0:33 / /sys/fs/cgroup/devices rw,relatime - cgroup cgroup rw,devices
37 31 0:34 / /sys/fs/cgroup/freezer rw,relatime - cgroup cgroup rw,freezer
38 31 0:35 / /sys/fs/cgroup/blkio rw,relatime - cgroup cgroup rw,blkio
39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
44 27 254:0 /run/netns /run/netns rw,relatime shared:1 - ext4 /dev/vda rw,discard
`
	mountinfoV1Only = `22 27 0:21 / /proc rw,relatime - proc proc rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,name=systemd
`
)

func TestParseMountinfo(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr error
	}{
		{name: "pure v2", in: mountinfoV2, want: "/sys/fs/cgroup"},
		{name: "hybrid", in: mountinfoHybrid, want: "/sys/fs/cgroup/unified"},
		{
			name: "optional fields before the separator",
			in:   "30 23 0:26 / /sys/fs/cgroup rw,nosuid shared:9 master:3 propagate_from:2 unbindable - cgroup2 cgroup2 rw\n",
			want: "/sys/fs/cgroup",
		},
		{
			name: "no optional fields",
			in:   "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 none rw\n",
			want: "/sys/fs/cgroup",
		},
		{
			name: "escaped space and tab in mount point",
			in:   "30 23 0:26 / /mnt/my\\040cgroup\\011v2 rw shared:9 - cgroup2 cgroup2 rw\n",
			want: "/mnt/my cgroup\tv2",
		},
		{
			name: "escaped backslash in mount point",
			in:   "30 23 0:26 / /mnt/a\\134b rw - cgroup2 cgroup2 rw\n",
			want: `/mnt/a\b`,
		},
		{
			name: "first cgroup2 mount wins",
			in:   "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw\n50 30 0:26 /inner /run/inner rw - cgroup2 cgroup2 rw\n",
			want: "/sys/fs/cgroup",
		},
		{
			name: "cgroup2 as source or option is not the type",
			in: "30 23 0:26 / /mnt/a rw - tmpfs cgroup2 rw\n" +
				"31 23 0:27 / /mnt/b rw cgroup2 - tmpfs tmpfs rw\n" +
				"32 23 0:28 / /mnt/c rw - cgroup2 cgroup2 rw\n",
			want: "/mnt/c",
		},
		{
			name: "malformed lines skipped",
			in:   "\n-\n30 23 - cgroup2 cgroup2 rw\n1 2 3 4 - cgroup2\n30 23 0:26 / /ok rw -\n30 23 0:26 / /good rw - cgroup2 cgroup2 rw\n",
			want: "/good",
		},
		{
			name: "no trailing newline",
			in:   "30 23 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw",
			want: "/sys/fs/cgroup",
		},
		{name: "v1 only", in: mountinfoV1Only, wantErr: ErrNoCgroup2},
		{name: "empty", in: "", wantErr: ErrNoCgroup2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseMountinfo(strings.NewReader(tt.in))
			if !errors.Is(err, tt.wantErr) {
				t.Fatalf("err = %v, want %v", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseMountinfo = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestParseMountinfoReadError(t *testing.T) {
	boom := errors.New("boom")
	_, err := parseMountinfo(iotest.ErrReader(boom))
	if !errors.Is(err, boom) || errors.Is(err, ErrNoCgroup2) {
		t.Fatalf("err = %v, want the read error", err)
	}
	if !strings.Contains(err.Error(), "reading mount table") {
		t.Errorf("error %q does not say what it was reading", err)
	}
}

func TestErrNoCgroup2(t *testing.T) {
	for _, want := range []string{"mountinfo", "mount -t cgroup2", "/sys/fs/cgroup/unified"} {
		if !strings.Contains(ErrNoCgroup2.Error(), want) {
			t.Errorf("ErrNoCgroup2 %q does not mention %q", ErrNoCgroup2, want)
		}
	}
}

func TestUnescapeOctal(t *testing.T) {
	tests := []struct {
		name, in, want string
	}{
		{"no escapes", "/sys/fs/cgroup", "/sys/fs/cgroup"},
		{"empty", "", ""},
		{"space", `/a\040b`, "/a b"},
		{"tab newline backslash", `\011\012\134`, "\t\n\\"},
		{"at end", `/a\040`, "/a "},
		{"adjacent", `\040\040`, "  "},
		{"highest byte", `\377`, "\xff"},
		{"nul", `a\000b`, "a\x00b"},
		{"trailing backslash", `/a\`, `/a\`},
		{"lone backslash", `\`, `\`},
		{"short escape", `/a\04`, `/a\04`},
		{"short escape then more", `\04`, `\04`},
		{"invalid octal digits", `/a\999`, `/a\999`},
		{"digit 8", `\108`, `\108`},
		{"over a byte", `\400`, `\400`},
		{"sign is not a digit", `\+12`, `\+12`},
		{"escaped backslash is not re-read", `\134040`, `\040`},
		{"invalid then valid", `\9\040`, `\9 `},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := unescapeOctal(tt.in); got != tt.want {
				t.Errorf("unescapeOctal(%q) = %q, want %q", tt.in, got, tt.want)
			}
		})
	}
}

func TestParseProcCgroup(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string
		wantErr string
	}{
		{
			name: "hybrid",
			in: "12:hugetlb:/\n11:net_cls,net_prio:/\n10:cpu,cpuacct:/user.slice\n9:name=systemd:/user.slice/user-1000.slice/session-2.scope\n" +
				"8:pids:/user.slice/user-1000.slice/session-2.scope\n4:memory:/user.slice/user-1000.slice/session-2.scope\n1:cpuset:/\n" +
				"0::/user.slice/user-1000.slice/session-2.scope\n",
			want: "/user.slice/user-1000.slice/session-2.scope",
		},
		{
			name: "pure v2",
			in:   "0::/user.slice/user-1000.slice/user@1000.service/app.slice/app-foot.scope\n",
			want: "/user.slice/user-1000.slice/user@1000.service/app.slice/app-foot.scope",
		},
		{name: "root", in: "0::/\n", want: "/"},
		{name: "no trailing newline", in: "0::/a b", want: "/a b"},
		{name: "10:: is not 0::", in: "10::/v1\n0::/v2\n", want: "/v2"},
		{name: "deleted cgroup", in: "0::/gone (deleted)\n", want: "/gone (deleted)"},
		{name: "malformed: empty path", in: "1:cpu:/\n0::\n", wantErr: `malformed cgroup2 line "0::"`},
		{name: "malformed: relative path", in: "0::user.slice\n", wantErr: `malformed cgroup2 line "0::user.slice"`},
		{name: "no 0:: line", in: "9:name=systemd:/\n4:memory:/x\n1:cpu:/\n", wantErr: "no cgroup2 (0::) line"},
		{name: "empty", in: "", wantErr: "no cgroup2 (0::) line"},
		{name: "0:: not at line start", in: " 0::/x\n", wantErr: "no cgroup2 (0::) line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := parseProcCgroup([]byte(tt.in))
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("parseProcCgroup: %v", err)
			case tt.wantErr != "" && err == nil:
				t.Fatalf("parseProcCgroup = %q, want error containing %q", got, tt.wantErr)
			case err != nil && !strings.Contains(err.Error(), tt.wantErr):
				t.Errorf("error %q does not contain %q", err, tt.wantErr)
			}
			if got != tt.want {
				t.Errorf("parseProcCgroup = %q, want %q", got, tt.want)
			}
		})
	}
}

func FuzzParseMountinfo(f *testing.F) {
	for _, s := range []string{
		mountinfoV2, mountinfoHybrid, mountinfoV1Only, "",
		"30 23 0:26 / /mnt/my\\040cg rw shared:9 - cgroup2 cgroup2 rw\n",
		"1 2 3 4 - cgroup2\n",
		"30 23 0:26 / /a\\9 rw - cgroup2 x rw",
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got, err := parseMountinfo(strings.NewReader(in))
		if err != nil {
			if !errors.Is(err, ErrNoCgroup2) && !strings.Contains(err.Error(), "reading mount table") {
				t.Fatalf("unexpected error %v", err)
			}
			if got != "" {
				t.Fatalf("got %q with error %v", got, err)
			}
			return
		}
		if !strings.Contains(in, "cgroup2") {
			t.Fatalf("found %q in a table without cgroup2", got)
		}
	})
}

func FuzzParseProcCgroup(f *testing.F) {
	for _, s := range []string{
		"12:hugetlb:/\n1:cpuset:/\n0::/user.slice/session-2.scope\n",
		"0::/\n", "0::\n", "0::x\n", "1:cpu:/\n", "",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := parseProcCgroup(in)
		if err != nil {
			if got != "" {
				t.Fatalf("got %q with error %v", got, err)
			}
			return
		}
		if !strings.HasPrefix(got, "/") || strings.Contains(got, "\n") {
			t.Fatalf("path %q is not an absolute one-line path", got)
		}
	})
}

func FuzzUnescapeOctal(f *testing.F) {
	for _, s := range []string{`/a\040b`, `\`, `\04`, `\999`, `\377`, "/plain"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		got := unescapeOctal(in)
		if len(got) > len(in) {
			t.Fatalf("unescapeOctal(%q) = %q grew", in, got)
		}
		if !strings.Contains(in, `\`) && got != in {
			t.Fatalf("unescapeOctal(%q) = %q changed a string without escapes", in, got)
		}
	})
}

// TestMountAgreesWithTable: the statfs shortcut finds the mount the mount table
// lists first, on this host (hybrid here: /sys/fs/cgroup/unified).
func TestMountAgreesWithTable(t *testing.T) {
	want, werr := mountFromTable()
	got, err := Mount()
	if got != want || (err == nil) != (werr == nil) {
		t.Fatalf("Mount() = %q, %v; the mount table says %q, %v", got, err, want, werr)
	}
	if err != nil {
		testenv.Unavailable(t, "no cgroup2 here: %v", err)
	}
	var st syscall.Statfs_t
	if err := syscall.Statfs(got, &st); err != nil || st.Type != cgroup2Magic {
		t.Errorf("%s: statfs type %#x, %v; want cgroup2", got, st.Type, err)
	}
}

func BenchmarkMount(b *testing.B) {
	b.Run("statfs", func(b *testing.B) {
		for b.Loop() {
			if _, err := Mount(); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("mountinfo", func(b *testing.B) {
		for b.Loop() {
			if _, err := mountFromTable(); err != nil {
				b.Fatal(err)
			}
		}
	})
}
