package kube

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// ServiceAccountDir is where the kubelet mounts a pod's service account
// credentials.
const ServiceAccountDir = "/var/run/secrets/kubernetes.io/serviceaccount"

const (
	// requestTimeout bounds a request whose context has no deadline. Watches
	// have none: they last until the server's timeoutSeconds.
	requestTimeout = 30 * time.Second
	// tokenMaxAge is how long a token read from a file is used before the
	// file is read again. The kubelet rewrites a bound service account token
	// well before it expires (at 80% of its life, at least an hour).
	tokenMaxAge = time.Minute
	userAgent   = "syscage-agent"
)

// Config says where the API server is and how to authenticate to it.
type Config struct {
	// Host is the API server's URL, "https://host:port", possibly with a path
	// prefix. Plain http is refused unless Insecure is set.
	Host string
	// CAData holds the PEM certificates that sign the server's certificate.
	// Empty means the system's roots.
	CAData []byte
	// Token is a bearer token; TokenFile names a file holding one, read again
	// every minute and after a 401 (bound service account tokens rotate). At
	// most one of them.
	Token     string
	TokenFile string
	// ClientCert and ClientKey are an optional PEM client certificate and key.
	ClientCert, ClientKey []byte
	// Insecure skips verifying the server's certificate and allows http. For
	// tests only.
	Insecure bool
}

// Client makes requests to one API server. It is safe for concurrent use.
type Client struct {
	// Log receives ListWatch's reports of failed lists and watches and of
	// token re-reads; nil discards them. Set it before using the client.
	Log *slog.Logger

	base    *url.URL
	http    *http.Client
	token   *tokenSource
	timeout time.Duration // of requests whose context has no deadline

	// ListWatch's backoff between failures; tests shorten it.
	minBackoff, maxBackoff time.Duration
}

// InCluster returns a client for the API server of the cluster the process
// runs in, as a pod, with the pod's service account.
func InCluster() (*Client, error) {
	return inCluster(os.Getenv, ServiceAccountDir)
}

func inCluster(getenv func(string) string, dir string) (*Client, error) {
	host, port := getenv("KUBERNETES_SERVICE_HOST"), getenv("KUBERNETES_SERVICE_PORT")
	switch {
	case host == "":
		return nil, errors.New("not running in a pod: KUBERNETES_SERVICE_HOST is unset")
	case port == "":
		return nil, errors.New("not running in a pod: KUBERNETES_SERVICE_PORT is unset")
	}
	tokenFile := filepath.Join(dir, "token")
	if _, err := os.Stat(tokenFile); err != nil {
		return nil, fmt.Errorf("no service account token: %w (is automountServiceAccountToken false for the pod?)", err)
	}
	ca, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		return nil, fmt.Errorf("no cluster CA certificate: %w (is automountServiceAccountToken false for the pod?)", err)
	}
	// JoinHostPort brackets an IPv6 address.
	return New(Config{Host: "https://" + net.JoinHostPort(host, port), CAData: ca, TokenFile: tokenFile})
}

// New returns a client for the API server cfg describes.
func New(cfg Config) (*Client, error) {
	base, err := url.Parse(cfg.Host)
	switch {
	case err != nil || base.Host == "" || (base.Scheme != "https" && base.Scheme != "http"):
		return nil, fmt.Errorf("API server URL %q: want https://host:port", cfg.Host)
	case base.Scheme == "http" && !cfg.Insecure:
		return nil, fmt.Errorf("API server URL %q: plain http would send the token in clear; use https", cfg.Host)
	case cfg.Token != "" && cfg.TokenFile != "":
		return nil, errors.New("both a token and a token file: set one")
	case (cfg.ClientCert == nil) != (cfg.ClientKey == nil):
		return nil, errors.New("a client certificate needs both the certificate and its key")
	}
	base.Path = strings.TrimSuffix(base.Path, "/")

	tlsConfig := &tls.Config{MinVersion: tls.VersionTLS12, InsecureSkipVerify: cfg.Insecure}
	if len(cfg.CAData) > 0 {
		tlsConfig.RootCAs = x509.NewCertPool()
		if !tlsConfig.RootCAs.AppendCertsFromPEM(cfg.CAData) {
			return nil, errors.New("CA data holds no PEM certificate")
		}
	}
	if cfg.ClientCert != nil {
		cert, err := tls.X509KeyPair(cfg.ClientCert, cfg.ClientKey)
		if err != nil {
			return nil, fmt.Errorf("client certificate: %w", err)
		}
		tlsConfig.Certificates = []tls.Certificate{cert}
	}
	var protocols http.Protocols
	protocols.SetHTTP1(true)
	protocols.SetHTTP2(true)
	transport := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSClientConfig:     tlsConfig,
		TLSHandshakeTimeout: 10 * time.Second,
		IdleConnTimeout:     90 * time.Second,
		MaxIdleConnsPerHost: 8,
		Protocols:           &protocols,
		// Watches sit idle for minutes: ping a silent HTTP/2 connection so
		// a dead one is closed instead of leaving its watches hanging.
		HTTP2: &http.HTTP2Config{SendPingTimeout: 30 * time.Second, PingTimeout: 15 * time.Second},
	}

	c := &Client{
		base: base,
		// No Client.Timeout: it would cut watches. Each request gets a
		// deadline from its context instead.
		http:       &http.Client{Transport: transport},
		timeout:    requestTimeout,
		minBackoff: 200 * time.Millisecond,
		maxBackoff: 10 * time.Second,
	}
	switch {
	case cfg.TokenFile != "":
		c.token = &tokenSource{file: cfg.TokenFile, now: time.Now}
		if _, err := c.token.get(c.log(), false); err != nil {
			return nil, err
		}
	case cfg.Token != "":
		c.token = &tokenSource{token: cfg.Token}
	}
	return c, nil
}

var discard = slog.New(slog.DiscardHandler)

func (c *Client) log() *slog.Logger {
	if c.Log == nil {
		return discard
	}
	return c.Log
}

// Get reads the object at path, e.g. /api/v1/namespaces/ns/pods/name, into out.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	return c.do(ctx, http.MethodGet, path, nil, "", nil, out)
}

// List reads the collection at path, e.g. /api/v1/pods, with the query q
// (labelSelector, fieldSelector, …) into out, a struct with the list's Items
// and Metadata.ResourceVersion; a RawList does for any kind. It does not
// page: with a limit in q, out gets only the first page.
func (c *Client) List(ctx context.Context, path string, q url.Values, out any) error {
	return c.do(ctx, http.MethodGet, path, q, "", nil, out)
}

// RawList is a list of any kind, its items left encoded.
type RawList struct {
	Metadata struct {
		ResourceVersion string `json:"resourceVersion"`
	} `json:"metadata"`
	Items []json.RawMessage `json:"items"`
}

// Create posts the JSON object body to the collection at path and reads the
// created object into out, if out is not nil.
func (c *Client) Create(ctx context.Context, path string, body []byte, out any) error {
	return c.do(ctx, http.MethodPost, path, nil, "application/json", body, out)
}

// PatchType is the Content-Type of a patch, which says how the server applies it.
type PatchType string

const (
	// MergePatch is a JSON merge patch (RFC 7386): an object whose fields
	// replace the target's, null deleting one. A metadata.resourceVersion in
	// it is a precondition: the server answers 409 Conflict if it is stale.
	MergePatch PatchType = "application/merge-patch+json"
	// JSONPatch is a JSON patch (RFC 6902): a list of operations.
	JSONPatch PatchType = "application/json-patch+json"
)

// Patch applies the patch body of type typ to the object at path and reads
// the result into out, if out is not nil. A status is patched at path+"/status".
func (c *Client) Patch(ctx context.Context, path string, typ PatchType, body []byte, out any) error {
	return c.do(ctx, http.MethodPatch, path, nil, string(typ), body, out)
}

// Delete deletes the object at path.
func (c *Client) Delete(ctx context.Context, path string) error {
	return c.do(ctx, http.MethodDelete, path, nil, "", nil, nil)
}

// do makes one request and decodes a successful response into out, if out is
// not nil. Without a deadline in ctx, the request gets c.timeout.
func (c *Client) do(ctx context.Context, method, path string, q url.Values, contentType string, body []byte, out any) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.timeout)
		defer cancel()
	}
	resp, err := c.send(ctx, method, path, q, contentType, body)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	if out == nil {
		// Read what is small enough, so that the connection is used again.
		io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
		return nil
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("%s %s: decoding the response: %w", method, path, err)
	}
	return nil
}

// send sends a request and returns a successful response, which the caller
// closes, or an error (an *APIError for an unsuccessful status). After a 401
// it reads the token file again and, if the token changed, sends the request
// once more: the server authenticates before doing anything, so this is safe
// for any method.
func (c *Client) send(ctx context.Context, method, path string, q url.Values, contentType string, body []byte) (*http.Response, error) {
	if !strings.HasPrefix(path, "/") {
		return nil, fmt.Errorf("API path %q does not start with /", path)
	}
	u := *c.base
	u.Path += path
	u.RawQuery = q.Encode()
	var token string
	if c.token != nil {
		var err error
		if token, err = c.token.get(c.log(), false); err != nil {
			return nil, err
		}
	}
	for retried := false; ; retried = true {
		req, err := http.NewRequestWithContext(ctx, method, u.String(), bytes.NewReader(body))
		if err != nil {
			return nil, err
		}
		req.Header.Set("Accept", "application/json")
		req.Header.Set("User-Agent", userAgent)
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := c.http.Do(req)
		if err != nil {
			// A *url.Error repeats the method and URL the caller adds.
			if ue := (*url.Error)(nil); errors.As(err, &ue) {
				err = ue.Err
			}
			return nil, err
		}
		if resp.StatusCode >= 200 && resp.StatusCode < 300 {
			return resp, nil
		}
		apiErr := readAPIError(resp)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || retried || c.token == nil || c.token.file == "" {
			return nil, apiErr
		}
		fresh, err := c.token.get(c.log(), true)
		if err != nil || fresh == token {
			return nil, apiErr
		}
		c.log().Info("token rejected; sending again with the token file's new one", "file", c.token.file)
		token = fresh
	}
}

// tokenSource holds a bearer token, fixed or read from a file that may change.
type tokenSource struct {
	file string
	now  func() time.Time

	mu    sync.Mutex
	token string
	read  time.Time
}

// get returns the token, reading the file again if force is set or the token
// is older than tokenMaxAge. If that read fails, the previous token is used:
// it may well still be valid.
func (t *tokenSource) get(log *slog.Logger, force bool) (string, error) {
	if t.file == "" {
		return t.token, nil
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.token != "" && !force && t.now().Sub(t.read) < tokenMaxAge {
		return t.token, nil
	}
	b, err := os.ReadFile(t.file)
	token := strings.TrimSpace(string(b))
	if err == nil && token == "" {
		err = fmt.Errorf("token file %s is empty", t.file)
	}
	if err != nil {
		if t.token == "" {
			return "", fmt.Errorf("reading the token: %w", err)
		}
		log.Warn("keeping the previous token", "err", err)
		t.read = t.now() // and try again in a minute, not at every request
		return t.token, nil
	}
	t.token, t.read = token, t.now()
	return t.token, nil
}
