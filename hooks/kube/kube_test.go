package kube

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"io"
	"log"
	"log/slog"
	"math/big"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// serve starts a TLS server for h and returns a client trusting its
// certificate, with the token "t1" in a token file, and that file.
func serve(t *testing.T, h http.Handler, http2 bool) (*Client, string) {
	c, tokenFile, _ := serveTLS(t, h, http2)
	return c, tokenFile
}

func serveTLS(t *testing.T, h http.Handler, http2 bool) (*Client, string, *httptest.Server) {
	t.Helper()
	srv := httptest.NewUnstartedServer(h)
	srv.EnableHTTP2 = http2
	srv.StartTLS()
	t.Cleanup(srv.Close)
	tokenFile := filepath.Join(t.TempDir(), "token")
	writeFile(t, tokenFile, "t1\n")
	c, err := New(Config{Host: srv.URL, CAData: caPEM(srv), TokenFile: tokenFile})
	if err != nil {
		t.Fatal(err)
	}
	c.minBackoff, c.maxBackoff = time.Millisecond, 20*time.Millisecond
	t.Cleanup(c.http.CloseIdleConnections)
	return c, tokenFile, srv
}

func caPEM(srv *httptest.Server) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
}

func writeFile(t *testing.T, name, s string) {
	t.Helper()
	if err := os.WriteFile(name, []byte(s), 0o600); err != nil {
		t.Fatal(err)
	}
}

type pod struct {
	Metadata struct {
		Name            string `json:"name"`
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Data map[string]string `json:"data"`
}

func TestInCluster(t *testing.T) {
	f := newFakeAPI("t1")
	f.add("a")
	srv := httptest.NewTLSServer(f)
	defer srv.Close()
	u, _ := url.Parse(srv.URL)

	full := t.TempDir()
	writeFile(t, filepath.Join(full, "token"), "t1")
	if err := os.WriteFile(filepath.Join(full, "ca.crt"), caPEM(srv), 0o600); err != nil {
		t.Fatal(err)
	}
	noCA := t.TempDir()
	writeFile(t, filepath.Join(noCA, "token"), "t1")
	env := func(host, port string) func(string) string {
		return func(k string) string {
			return map[string]string{"KUBERNETES_SERVICE_HOST": host, "KUBERNETES_SERVICE_PORT": port}[k]
		}
	}
	for _, tc := range []struct {
		name, host, port, dir string
		err                   string
	}{
		{"no host", "", "443", full, "not running in a pod: KUBERNETES_SERVICE_HOST is unset"},
		{"no port", "10.0.0.1", "", full, "not running in a pod: KUBERNETES_SERVICE_PORT is unset"},
		{"no token", "10.0.0.1", "443", t.TempDir(), "no service account token: stat "},
		{"no CA", "10.0.0.1", "443", noCA, "no cluster CA certificate: open "},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := inCluster(env(tc.host, tc.port), tc.dir)
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %v, want an error with %q", err, tc.err)
			}
		})
	}

	t.Run("IPv6", func(t *testing.T) {
		c, err := inCluster(env("fd00::1", "6443"), full)
		if err != nil {
			t.Fatal(err)
		}
		if got := c.base.String(); got != "https://[fd00::1]:6443" {
			t.Errorf("got %s, want https://[fd00::1]:6443", got)
		}
	})
	t.Run("get", func(t *testing.T) {
		c, err := inCluster(env(u.Hostname(), u.Port()), full)
		if err != nil {
			t.Fatal(err)
		}
		var p pod
		if err := c.Get(t.Context(), collection+"/a", &p); err != nil {
			t.Fatal(err)
		}
		if p.Metadata.Name != "a" {
			t.Errorf("got %+v", p)
		}
	})
}

func TestNewRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{"no scheme", Config{Host: "10.0.0.1:6443"}, "want https://host:port"},
		{"http", Config{Host: "http://10.0.0.1:6443", Token: "x"}, "plain http"},
		{"two tokens", Config{Host: "https://h", Token: "x", TokenFile: "/t"}, "both a token and a token file"},
		{"bad CA", Config{Host: "https://h", CAData: []byte("junk")}, "CA data holds no PEM certificate"},
		{"cert without key", Config{Host: "https://h", ClientCert: []byte("x")}, "needs both"},
		{"empty token file", Config{Host: "https://h", TokenFile: os.DevNull}, "token file /dev/null is empty"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.cfg); err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Fatalf("got %v, want an error with %q", err, tc.err)
			}
		})
	}
}

func TestTLS(t *testing.T) {
	f := newFakeAPI("t1")
	f.add("a")
	t.Run("CA and headers", func(t *testing.T) {
		c, _ := serve(t, f, false)
		if err := c.Get(t.Context(), collection+"/a", nil); err != nil {
			t.Fatal(err)
		}
		h := f.sent()[0].header
		for k, want := range map[string]string{"Accept": "application/json", "User-Agent": "syscage-agent", "Authorization": "Bearer t1"} {
			if got := h.Get(k); got != want {
				t.Errorf("%s: got %q, want %q", k, got, want)
			}
		}
	})
	t.Run("HTTP/2", func(t *testing.T) {
		c, _ := serve(t, f, true)
		if err := c.Get(t.Context(), collection+"/a", nil); err != nil {
			t.Fatal(err)
		}
		if p := f.sent()[0].proto; p != 2 {
			t.Errorf("got HTTP/%d, want HTTP/2", p)
		}
	})
	t.Run("untrusted", func(t *testing.T) {
		srv := httptest.NewUnstartedServer(f)
		srv.Config.ErrorLog = log.New(io.Discard, "", 0) // the handshakes fail
		srv.StartTLS()
		defer srv.Close()
		otherCA, _, _ := clientCert(t) // httptest servers all share one certificate
		for name, ca := range map[string][]byte{"system roots": nil, "another CA": otherCA} {
			c, err := New(Config{Host: srv.URL, CAData: ca, Token: "t1"})
			if err != nil {
				t.Fatal(err)
			}
			var verr *tls.CertificateVerificationError
			if err := c.Get(t.Context(), collection+"/a", nil); !errors.As(err, &verr) {
				t.Errorf("%s: got %v, want a certificate verification error", name, err)
			}
		}
	})
	t.Run("client certificate", func(t *testing.T) {
		certPEM, keyPEM, cert := clientCert(t)
		srv := httptest.NewUnstartedServer(f)
		srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: x509.NewCertPool()}
		srv.TLS.ClientCAs.AddCert(cert)
		srv.StartTLS()
		defer srv.Close()
		c, err := New(Config{Host: srv.URL, CAData: caPEM(srv), Token: "t1", ClientCert: certPEM, ClientKey: keyPEM})
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Get(t.Context(), collection+"/a", nil); err != nil {
			t.Fatal(err)
		}
	})
}

func clientCert(t *testing.T) (certPEM, keyPEM []byte, cert *x509.Certificate) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, BasicConstraintsValid: true, IsCA: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ = x509.ParseCertificate(der)
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), cert
}

func TestErrors(t *testing.T) {
	f := newFakeAPI("t1")
	f.add("a")
	c, _ := serve(t, f, false)
	ctx := t.Context()

	err := c.Get(ctx, collection+"/x", nil)
	if want := `GET /api/v1/namespaces/ns/pods/x: 404 NotFound: pods "x" not found`; err == nil || err.Error() != want {
		t.Fatalf("got %v, want %s", err, want)
	}
	var apiErr *APIError
	if !errors.As(err, &apiErr) || *apiErr != (APIError{404, "NotFound", `pods "x" not found`}) {
		t.Errorf("got %#v", apiErr)
	}
	if !IsNotFound(err) || IsConflict(err) || IsGone(err) || IsAlreadyExists(err) {
		t.Errorf("%v: wrong Is…", err)
	}

	err = c.Create(ctx, collection, []byte(`{"metadata":{"name":"a"}}`), nil)
	if !IsAlreadyExists(err) || IsConflict(err) {
		t.Errorf("create a again: got %v, want AlreadyExists", err)
	}
	var p pod
	if err := c.Create(ctx, collection, []byte(`{"metadata":{"name":"b"},"data":{"k":"v"}}`), &p); err != nil || p.Data["k"] != "v" {
		t.Errorf("create b: got %v, %+v", err, p)
	}
	if err := c.Delete(ctx, collection+"/b"); err != nil {
		t.Fatal(err)
	}
	if err := c.Delete(ctx, collection+"/b"); !IsNotFound(err) || !strings.HasPrefix(err.Error(), "DELETE /api/v1/namespaces/ns/pods/b: 404") {
		t.Errorf("delete b again: got %v, want DELETE …: 404", err)
	}
	if err := c.Get(ctx, "api/v1/pods", nil); err == nil || !strings.Contains(err.Error(), "does not start with /") {
		t.Errorf("relative path: got %v", err)
	}
}

// An error that is not a Status, from something between the client and the
// API server, is quoted briefly, and an endless one read only in part.
func TestErrorNotStatus(t *testing.T) {
	var written atomic.Int64
	handlerDone := make(chan struct{})
	c, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer close(handlerDone)
		w.WriteHeader(http.StatusBadGateway)
		page := bytes.Repeat([]byte("<html> bad\ngateway </html>\n"), 1000)
		for r.Context().Err() == nil {
			n, err := w.Write(page)
			written.Add(int64(n))
			if err != nil {
				return
			}
		}
	}), false)
	c.timeout = 5 * time.Second // reading it all would last until then
	err := c.Get(t.Context(), "/api/v1/pods", nil)
	var apiErr *APIError
	if !errors.As(err, &apiErr) || apiErr.Code != 502 || apiErr.Reason != "" {
		t.Fatalf("got %v", err)
	}
	if !strings.HasPrefix(apiErr.Message, "<html> bad gateway </html> <html>") || len(apiErr.Message) > 210 {
		t.Errorf("message %q", apiErr.Message)
	}
	if !strings.HasPrefix(err.Error(), "GET /api/v1/pods: 502 Bad Gateway: <html>") {
		t.Errorf("error %q", err)
	}
	// The client read 64KiB; the server wrote that and what the sockets hold.
	<-handlerDone
	if n := written.Load(); n > 64<<20 {
		t.Errorf("the client read %d MiB", n>>20)
	}
}

func TestPatch(t *testing.T) {
	f := newFakeAPI("t1")
	f.add("a")
	c, _ := serve(t, f, false)
	ctx, path := t.Context(), collection+"/a"

	var p pod
	if err := c.Patch(ctx, path, MergePatch, []byte(`{"metadata":{"resourceVersion":"1"},"data":{"k":"1"}}`), &p); err != nil {
		t.Fatal(err)
	}
	if p.Metadata.ResourceVersion != "2" || p.Data["k"] != "1" {
		t.Errorf("got %+v", p)
	}
	// Stale: resourceVersion 1 is a precondition that no longer holds.
	err := c.Patch(ctx, path, MergePatch, []byte(`{"metadata":{"resourceVersion":"1"},"data":{"k":"2"}}`), nil)
	if !IsConflict(err) || IsNotFound(err) || !strings.Contains(err.Error(), "PATCH /api/v1/namespaces/ns/pods/a: 409 Conflict: Operation cannot be fulfilled") {
		t.Errorf("got %v, want a conflict", err)
	}
	if err := c.Patch(ctx, path, JSONPatch, []byte(`[{"op":"replace","path":"/data/k","value":"3"}]`), &p); err != nil {
		t.Fatal(err)
	}
	if p.Data["k"] != "3" {
		t.Errorf("got %+v", p)
	}
	if err := c.Patch(ctx, path, "application/yaml", []byte(`{}`), nil); err == nil || !strings.Contains(err.Error(), "415") {
		t.Errorf("got %v, want 415", err)
	}
	if err := c.Patch(ctx, collection+"/x", MergePatch, []byte(`{}`), nil); !IsNotFound(err) {
		t.Errorf("got %v, want not found", err)
	}
}

func TestTokenReread(t *testing.T) {
	f := newFakeAPI("t1")
	f.add("a")
	c, tokenFile, srv := serveTLS(t, f, false)
	get := func() ([]string, error) {
		err := c.Get(t.Context(), collection+"/a", nil)
		var tokens []string
		for _, r := range f.sent() {
			tokens = append(tokens, r.header.Get("Authorization"))
		}
		return tokens, err
	}
	check := func(what string, want []string, wantCode int) {
		t.Helper()
		got, err := get()
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: tokens sent (-want +got):\n%s", what, diff)
		}
		var apiErr *APIError
		if wantCode == 200 && err != nil {
			t.Errorf("%s: got %v", what, err)
		} else if wantCode != 200 && (!errors.As(err, &apiErr) || apiErr.Code != wantCode) {
			t.Errorf("%s: got %v, want %d", what, err, wantCode)
		}
	}
	check("first", []string{"Bearer t1"}, 200)

	// The server wants a new token, the file still has the old one: no retry.
	f.locked(func() { f.token = "t2" })
	check("rejected, unchanged file", []string{"Bearer t1"}, 401)
	// The kubelet has written the new one: read on the 401, and sent again.
	writeFile(t, tokenFile, "t2\n")
	check("rejected, new file", []string{"Bearer t1", "Bearer t2"}, 200)
	check("kept", []string{"Bearer t2"}, 200)

	// A minute on, the file is read again before sending.
	writeFile(t, tokenFile, "t3\n")
	f.locked(func() { f.token = "t3" })
	c.token.now = func() time.Time { return time.Now().Add(tokenMaxAge) }
	check("a minute on", []string{"Bearer t3"}, 200)

	// An unreadable file later keeps the token read before.
	os.Remove(tokenFile)
	c.token.now = func() time.Time { return time.Now().Add(2 * tokenMaxAge) }
	check("file gone", []string{"Bearer t3"}, 200)

	// A fixed token is never replaced.
	var err error
	if c, err = New(Config{Host: srv.URL, CAData: caPEM(srv), Token: "t1"}); err != nil {
		t.Fatal(err)
	}
	check("fixed token", []string{"Bearer t1"}, 401)
}

func TestTimeouts(t *testing.T) {
	// The server answers after the delay its path ends with.
	c, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		d, _ := time.ParseDuration(filepath.Base(r.URL.Path))
		select {
		case <-time.After(d):
		case <-r.Context().Done():
		}
		w.Write([]byte(`{}`))
	}), false)
	c.timeout = 50 * time.Millisecond
	if err := c.Get(t.Context(), "/delay/5s", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("got %v, want the request timeout", err)
	}
	// A deadline in the context replaces the default.
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	if err := c.Get(ctx, "/delay/200ms", nil); err != nil {
		t.Errorf("got %v, want the context's deadline to apply", err)
	}
}

func TestWatch(t *testing.T) {
	f := newFakeAPI("t1")
	f.add("a")
	f.add("b")
	c, _ := serve(t, f, false)
	c.timeout = 50 * time.Millisecond // must not cut watches
	ctx := t.Context()

	var got []string
	err := c.Watch(ctx, collection, url.Values{"labelSelector": {"app=x"}}, "1", func(e Event) error {
		var p pod
		if err := json.Unmarshal(e.Object, &p); err != nil {
			t.Errorf("%s: %v", e.Object, err)
		}
		got = append(got, e.Type+" "+p.Metadata.Name+" "+p.Metadata.ResourceVersion)
		switch len(got) {
		case 1:
			time.AfterFunc(200*time.Millisecond, func() { f.modify("a", "k", "v") })
		case 2:
			f.bookmark()
		case 3:
			f.locked(f.end)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff([]string{"ADDED b 2", "MODIFIED a 3", "BOOKMARK  5"}, got); diff != "" {
		t.Errorf("events (-want +got):\n%s", diff)
	}
	q := f.sent()[0].query
	if q.Get("watch") != "1" || q.Get("resourceVersion") != "1" || q.Get("allowWatchBookmarks") != "true" || q.Get("labelSelector") != "app=x" {
		t.Errorf("query %v", q)
	}
	if s, _ := strconv.Atoi(q.Get("timeoutSeconds")); s < 300 || s > 360 {
		t.Errorf("timeoutSeconds=%d, want 5 to 6 minutes", s)
	}

	stop := errors.New("stop")
	if err := c.Watch(ctx, collection, nil, "0", func(Event) error { return stop }); err != stop {
		t.Errorf("got %v, want fn's error", err)
	}

	f.locked(func() { f.oldest = 3 })
	err = c.Watch(ctx, collection, nil, "2", func(e Event) error {
		t.Errorf("got %s, want none", e.Type)
		return nil
	})
	var apiErr *APIError
	if !IsGone(err) || !errors.As(err, &apiErr) || apiErr.Code != 410 || apiErr.Reason != "Expired" ||
		!strings.Contains(err.Error(), `watching /api/v1/namespaces/ns/pods from "2": 410 Expired: too old resource version: 2 (3)`) {
		t.Errorf("got %v, want Gone", err)
	}
	if err := c.Get(ctx, collection+"/nope", nil); IsGone(err) {
		t.Errorf("IsGone(%v)", err)
	}
}

// A stream cut in the middle of an event is an error, not the end of the watch.
func TestWatchCut(t *testing.T) {
	c, _ := serve(t, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Write([]byte(`{"type":"ADDED","object":{"metadata":{"name":"a"}}}` + "\n" + `{"type":"ADDED","obj`))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}), false)
	n := 0
	err := c.Watch(t.Context(), "/api/v1/pods", nil, "1", func(Event) error { n++; return nil })
	if err == nil || n != 1 {
		t.Errorf("got %v after %d events, want an error after 1", err, n)
	}
}

// recorder is a Handler telling the test what it is given.
type recorder chan string

func (r recorder) Replace(items []json.RawMessage) {
	var names []string
	for _, it := range items {
		var p pod
		json.Unmarshal(it, &p)
		names = append(names, p.Metadata.Name)
	}
	r <- "replace " + strings.Join(names, " ")
}

func (r recorder) Event(e Event) {
	var p pod
	json.Unmarshal(e.Object, &p)
	r <- e.Type + " " + p.Metadata.Name
}

func (r recorder) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case got := <-r:
		if got != want {
			t.Fatalf("handler got %q, want %q", got, want)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("handler got nothing, want %q", want)
	}
}

// syncBuffer is a log destination safe for ListWatch's goroutine.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestListWatch(t *testing.T) {
	f := newFakeAPI("t1")
	f.add("a")
	f.add("b")
	f.failLists = 2
	c, _ := serve(t, f, false)
	var logs syncBuffer
	c.Log = slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(t.Context())
	h := make(recorder, 10)
	done := make(chan struct{})
	go func() {
		c.ListWatch(ctx, collection, url.Values{"fieldSelector": {"spec.nodeName=n1"}}, h)
		close(done)
	}()

	// Two failed lists, logged, then the first Replace.
	h.expect(t, "replace a b")
	var lists int
	f.locked(func() { lists = f.lists })
	if lists != 3 || strings.Count(logs.String(), "msg=listing") != 2 || !strings.Contains(logs.String(), "etcdserver: leader changed") {
		t.Errorf("%d lists, logs:\n%s", lists, logs.String())
	}
	f.add("c")
	h.expect(t, "ADDED c")
	f.modify("a", "k", "v")
	h.expect(t, "MODIFIED a")

	// A bookmark moves the resourceVersion the next watch starts from.
	f.bookmark()
	f.waitFor(t, "the bookmark", func() bool { return f.written == f.rv })
	f.locked(f.end)
	f.waitFor(t, "a second watch", func() bool { return len(f.watchFrom) == 2 })

	// b is deleted and the history compacted while the watch is down: the
	// watch from before is Gone, and a new list shows b gone.
	f.locked(func() {
		f.del("b")
		f.oldest = f.rv
		f.end()
	})
	h.expect(t, "replace a c")
	f.add("d")
	h.expect(t, "ADDED d")
	f.waitFor(t, "a watch from the new list", func() bool { return len(f.watchFrom) == 4 })
	f.mu.Lock()
	from := f.watchFrom
	f.mu.Unlock()
	if diff := cmp.Diff([]string{"2", "6", "6", "7"}, from); diff != "" {
		t.Errorf("watches from (-want +got):\n%s", diff)
	}
	for _, r := range f.sent() {
		if r.query.Get("fieldSelector") != "spec.nodeName=n1" {
			t.Errorf("%s %s?%s: no fieldSelector", r.method, r.path, r.query.Encode())
		}
	}

	cancel()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("ListWatch did not return when its context was done")
	}
	if len(h) != 0 {
		t.Errorf("handler also got %q", <-h)
	}
}

// Watches that end at once, delivering nothing, do not make a busy loop.
func TestListWatchBacksOff(t *testing.T) {
	f := newFakeAPI("t1")
	f.atOnce = true
	c, _ := serve(t, f, false)
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	c.ListWatch(ctx, collection, nil, make(recorder, 1))
	// 1ms doubling to 20ms: about 20 watches in 300ms. Without a wait,
	// thousands.
	f.mu.Lock()
	defer f.mu.Unlock()
	if n := len(f.watchFrom); n > 100 {
		t.Errorf("%d watches in 300ms", n)
	}
}
