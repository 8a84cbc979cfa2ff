package fleet

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"k8s.io/client-go/rest"
)

// cluster is an etcd and a kube-apiserver of their own, in a temporary
// directory, on free ports of 127.0.0.1: nothing of the cluster harness's
// running cluster (if any) is touched.
type cluster struct {
	dir        string
	pki        *pki
	etcd, api  *exec.Cmd
	etcdClient string // http://127.0.0.1:PORT
	etcdMetric string // http://127.0.0.1:PORT/metrics
	apiURL     string // https://127.0.0.1:PORT
	kubeconfig string // the admin's
	admin      *rest.Config
	http       *http.Client // the admin's, for /metrics
}

// startCluster starts etcd (from PATH) and the kube-apiserver of binDir, and
// waits until the API server is ready. stop stops them and removes dir.
func startCluster(ctx context.Context, binDir, dir string, profiling bool, logs io.Writer) (_ *cluster, err error) {
	apiserver := filepath.Join(binDir, "kube-apiserver")
	if _, err := os.Stat(apiserver); err != nil {
		return nil, fmt.Errorf("the cluster harness's kube-apiserver: %w: build it with 'make k8s-build'", err)
	}
	etcd, err := exec.LookPath("etcd")
	if err != nil {
		return nil, fmt.Errorf("etcd: %w: install Debian's etcd-server (make deps)", err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	c := &cluster{dir: dir}
	defer func() {
		if err != nil {
			c.stop()
		}
	}()
	if c.pki, err = newPKI(dir); err != nil {
		return nil, err
	}
	ports, err := freePorts(4)
	if err != nil {
		return nil, err
	}
	c.etcdClient = fmt.Sprintf("http://127.0.0.1:%d", ports[0])
	c.etcdMetric = fmt.Sprintf("http://127.0.0.1:%d/metrics", ports[2])
	c.apiURL = fmt.Sprintf("https://127.0.0.1:%d", ports[3])
	c.etcd = exec.Command(etcd, "--name", "fleet", "--data-dir", filepath.Join(dir, "etcd"),
		"--listen-client-urls", c.etcdClient, "--advertise-client-urls", c.etcdClient,
		"--listen-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		"--initial-advertise-peer-urls", fmt.Sprintf("http://127.0.0.1:%d", ports[1]),
		"--initial-cluster", fmt.Sprintf("fleet=http://127.0.0.1:%d", ports[1]),
		"--listen-metrics-urls", fmt.Sprintf("http://127.0.0.1:%d", ports[2]),
		// a cluster's usual quota (8 GiB); the default 2 GiB could end a 5,000-node run
		"--quota-backend-bytes", strconv.Itoa(8<<30))
	if err := c.start(c.etcd, "etcd", logs); err != nil {
		return nil, err
	}
	if err := waitHTTP(ctx, http.DefaultClient, c.etcdClient+"/health", 30*time.Second); err != nil {
		return nil, fmt.Errorf("etcd: %w", err)
	}
	// As tests/k8s/cluster/up.sh starts it, less what needs nodes or a network.
	c.api = exec.Command(apiserver,
		"--etcd-servers="+c.etcdClient,
		"--bind-address=127.0.0.1", "--advertise-address=127.0.0.1", "--secure-port="+strconv.Itoa(ports[3]),
		"--cert-dir="+filepath.Join(dir, "certs"),
		"--tls-cert-file="+c.pki.path("apiserver.crt"), "--tls-private-key-file="+c.pki.path("apiserver.key"),
		"--client-ca-file="+c.pki.path("ca.crt"),
		"--service-account-issuer=https://kubernetes.default.svc.cluster.local",
		"--service-account-key-file="+c.pki.path("sa.pub"), "--service-account-signing-key-file="+c.pki.path("sa.key"),
		"--service-cluster-ip-range=10.96.0.0/16",
		"--authorization-mode=Node,RBAC", "--enable-admission-plugins=NodeRestriction",
		"--allow-privileged=true", "--profiling="+strconv.FormatBool(profiling), "--v=1")
	if err := c.start(c.api, "kube-apiserver", logs); err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(c.pki.caCert)
	cert, err := tls.X509KeyPair(c.pki.adminCert, c.pki.adminKey)
	if err != nil {
		return nil, err
	}
	c.http = &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, Certificates: []tls.Certificate{cert}},
	}}
	if err := waitHTTP(ctx, c.http, c.apiURL+"/readyz", 2*time.Minute); err != nil {
		return nil, fmt.Errorf("kube-apiserver: %w (its log: %s)", err, c.logFile("kube-apiserver"))
	}
	c.admin = &rest.Config{
		Host: c.apiURL, QPS: 200, Burst: 400,
		TLSClientConfig: rest.TLSClientConfig{CAData: c.pki.caCert, CertData: c.pki.adminCert, KeyData: c.pki.adminKey},
	}
	c.kubeconfig = filepath.Join(dir, "admin.kubeconfig")
	kc := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
- name: fleet
  cluster: {certificate-authority: %s, server: %s}
users:
- name: admin
  user: {client-certificate: %s, client-key: %s}
contexts:
- name: fleet
  context: {cluster: fleet, user: admin, namespace: default}
current-context: fleet
`, c.pki.path("ca.crt"), c.apiURL, c.pki.path("admin.crt"), c.pki.path("admin.key"))
	if err := os.WriteFile(c.kubeconfig, []byte(kc), 0o600); err != nil {
		return nil, err
	}
	return c, nil
}

func (c *cluster) logFile(name string) string { return filepath.Join(c.dir, name+".log") }

// start runs cmd in a process group of its own, its output in dir/NAME.log.
func (c *cluster) start(cmd *exec.Cmd, name string, logs io.Writer) error {
	f, err := os.Create(c.logFile(name))
	if err != nil {
		return err
	}
	cmd.Stdout, cmd.Stderr = f, f
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("starting %s: %w", name, err)
	}
	f.Close()
	fmt.Fprintf(logs, "started %s (pid %d), log %s\n", name, cmd.Process.Pid, c.logFile(name))
	return nil
}

// apiCPU is the CPU time the API server has used (user and system), from
// /proc; zero if it cannot be read.
func (c *cluster) apiCPU() time.Duration { return cmdCPU(c.api) }

// etcdCPU is the same for etcd.
func (c *cluster) etcdCPU() time.Duration { return cmdCPU(c.etcd) }

func cmdCPU(cmd *exec.Cmd) time.Duration {
	if cmd == nil || cmd.Process == nil {
		return 0
	}
	return procCPU(cmd.Process.Pid)
}

// procCPU is the CPU time (user and system) process pid has used, from /proc;
// zero if it cannot be read.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// After the command's name in parentheses: field 3 onwards; utime and
	// stime are fields 14 and 15, in clock ticks (100 a second on Linux).
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	var ticks int64
	for _, v := range f[11:13] {
		n, _ := strconv.ParseInt(v, 10, 64)
		ticks += n
	}
	return time.Duration(ticks) * 10 * time.Millisecond
}

// stop stops the API server, then etcd (by their process ids), and removes
// the directory.
func (c *cluster) stop() {
	for _, cmd := range []*exec.Cmd{c.api, c.etcd} {
		if cmd == nil || cmd.Process == nil {
			continue
		}
		cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			cmd.Process.Kill()
			<-done
		}
	}
	if c.dir != "" {
		os.RemoveAll(c.dir)
	}
}

// metrics reads a Prometheus text endpoint: every sample of the metrics named,
// by its full line up to the value.
func (c *cluster) metrics(ctx context.Context, client *http.Client, url string, names ...string) (map[string]float64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	// The API server is loaded on purpose here: a read that times out (30 s) is
	// tried twice more before the run fails.
	var resp *http.Response
	for try := 0; ; try++ {
		if resp, err = client.Do(req); err == nil || try == 2 || ctx.Err() != nil {
			break
		}
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s (three times): %w", url, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("reading %s: %s", url, resp.Status)
	}
	out := map[string]float64{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		for _, n := range names {
			if strings.HasPrefix(line, n+"{") || strings.HasPrefix(line, n+" ") {
				i := strings.LastIndexByte(line, ' ')
				v, err := strconv.ParseFloat(line[i+1:], 64)
				if err == nil {
					out[line[:i]] = v
				}
			}
		}
	}
	return out, sc.Err()
}

// apiWrites counts the API server's requests that changed something, by
// resource: apiserver_request_total of verbs other than reads and watches,
// answered 2xx; and under rejectedKey the requests refused with 429.
func (c *cluster) apiWrites(ctx context.Context) (map[string]float64, error) {
	m, err := c.metrics(ctx, c.http, c.apiURL+"/metrics", "apiserver_request_total")
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for series, v := range m {
		verb, resource := label(series, "verb"), label(series, "resource")
		if sub := label(series, "subresource"); sub != "" {
			resource += "/" + sub
		}
		if label(series, "code") == "429" {
			out[rejectedKey] += v
		}
		switch verb {
		case "POST", "PUT", "PATCH", "DELETE", "APPLY", "DELETECOLLECTION":
			if strings.HasPrefix(label(series, "code"), "2") {
				out[resource] += v
			}
		}
	}
	return out, nil
}

// sumBy sums the samples of one of the API server's metrics by the values of
// the labels named, joined with "/": the priority and fairness refusals by
// "priority level/reason", or its requests served by priority level.
func (c *cluster) sumBy(ctx context.Context, metric string, labels ...string) (map[string]float64, error) {
	m, err := c.metrics(ctx, c.http, c.apiURL+"/metrics", metric)
	if err != nil {
		return nil, err
	}
	out := map[string]float64{}
	for series, v := range m {
		var key []string
		for _, l := range labels {
			key = append(key, label(series, l))
		}
		out[strings.Join(key, "/")] += v
	}
	return out, nil
}

// rejectedKey, in apiWrites, counts the requests of any verb refused with 429.
const rejectedKey = "429"

// etcdSize is etcd's database size in bytes, and the part of it in use.
func (c *cluster) etcdSize(ctx context.Context) (total, inUse float64, err error) {
	m, err := c.metrics(ctx, http.DefaultClient, c.etcdMetric, "etcd_mvcc_db_total_size_in_bytes", "etcd_mvcc_db_total_size_in_use_in_bytes")
	if err != nil {
		return 0, 0, err
	}
	total, ok := m["etcd_mvcc_db_total_size_in_bytes"]
	if !ok {
		return 0, 0, errors.New("etcd's metrics have no etcd_mvcc_db_total_size_in_bytes")
	}
	return total, m["etcd_mvcc_db_total_size_in_use_in_bytes"], nil
}

// label reads one label's value from a Prometheus series.
func label(series, name string) string {
	_, rest, ok := strings.Cut(series, name+`="`)
	if !ok {
		return ""
	}
	v, _, _ := strings.Cut(rest, `"`)
	return v
}

func waitHTTP(ctx context.Context, client *http.Client, url string, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	var last error
	for time.Now().Before(deadline) {
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
		resp, err := client.Do(req)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
			err = fmt.Errorf("%s", resp.Status)
		}
		last = err
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(250 * time.Millisecond):
		}
	}
	return fmt.Errorf("not ready after %s (%s): %w", timeout, url, last)
}

// freePorts finds n free TCP ports on 127.0.0.1.
func freePorts(n int) ([]int, error) {
	var ports []int
	var lns []net.Listener
	defer func() {
		for _, l := range lns {
			l.Close()
		}
	}()
	for range n {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		lns = append(lns, l)
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// profile writes a CPU profile of the API server over secs seconds to file.
func (c *cluster) profile(ctx context.Context, file string, secs int) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, fmt.Sprintf("%s/debug/pprof/profile?seconds=%d", c.apiURL, secs), nil)
	if err != nil {
		return err
	}
	client := *c.http
	client.Timeout = time.Duration(secs+60) * time.Second
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("%s", resp.Status)
	}
	data, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	return os.WriteFile(file, data, 0o644)
}
