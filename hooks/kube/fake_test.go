package kube

import (
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI is a minimal API server serving one collection of pods, with the
// behaviours the client relies on: bearer tokens, lists carrying a
// resourceVersion, watches streaming changes after a resourceVersion (and a
// 410 ERROR event when it is older than the oldest kept), merge and JSON
// patches with resourceVersion preconditions, and metav1.Status errors.
type fakeAPI struct {
	mu        sync.Mutex
	token     string // accepted
	rv        int
	objs      map[string]*fakeObj
	events    []fakeEvent
	oldest    int           // watches from an older resourceVersion are Gone
	changed   chan struct{} // closed and replaced at every change
	ended     chan struct{} // closed and replaced to end the open watches
	failLists int           // so many lists yet to answer 500
	atOnce    bool          // end watches at once, sending nothing

	// What clients sent.
	requests  []request
	lists     int
	watchFrom []string // resourceVersion of each watch
	written   int      // resourceVersion of the last event a watch wrote
}

const collection = "/api/v1/namespaces/ns/pods"

type request struct {
	method, path string
	query        url.Values
	header       http.Header
	proto        int
}

type fakeObj struct {
	rv   int
	data map[string]string
}

type fakeEvent struct {
	rv     int
	typ    string
	object []byte
}

func newFakeAPI(token string) *fakeAPI {
	return &fakeAPI{token: token, objs: map[string]*fakeObj{}, changed: make(chan struct{}), ended: make(chan struct{})}
}

func (o *fakeObj) json(name string) []byte {
	b, _ := json.Marshal(map[string]any{
		"apiVersion": "v1", "kind": "Pod",
		"metadata": map[string]string{"name": name, "namespace": "ns", "resourceVersion": strconv.Itoa(o.rv)},
		"data":     o.data,
	})
	return b
}

// change records an event; f.mu is held.
func (f *fakeAPI) change(typ, name string, o *fakeObj) {
	f.rv++
	o.rv = f.rv
	f.events = append(f.events, fakeEvent{f.rv, typ, o.json(name)})
	close(f.changed)
	f.changed = make(chan struct{})
}

func (f *fakeAPI) locked(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *fakeAPI) add(name string) {
	f.locked(func() {
		f.objs[name] = &fakeObj{data: map[string]string{}}
		f.change(Added, name, f.objs[name])
	})
}

func (f *fakeAPI) modify(name, k, v string) {
	f.locked(func() {
		f.objs[name].data[k] = v
		f.change(Modified, name, f.objs[name])
	})
}

// del deletes name; f.mu is held.
func (f *fakeAPI) del(name string) {
	o := f.objs[name]
	delete(f.objs, name)
	f.change(Deleted, name, o)
}

// bookmark makes a change elsewhere, then sends a bookmark of it.
func (f *fakeAPI) bookmark() {
	f.locked(func() {
		f.rv += 2
		b := fmt.Appendf(nil, `{"kind":"Pod","apiVersion":"v1","metadata":{"resourceVersion":"%d"}}`, f.rv)
		f.events = append(f.events, fakeEvent{f.rv, Bookmark, b})
		close(f.changed)
		f.changed = make(chan struct{})
	})
}

// end ends the open watches, as their timeoutSeconds would; f.mu is held.
func (f *fakeAPI) end() {
	close(f.ended)
	f.ended = make(chan struct{})
}

// waitFor polls cond, with f.mu held, until it holds.
func (f *fakeAPI) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		f.mu.Lock()
		ok := cond()
		f.mu.Unlock()
		if ok {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func writeStatus(w http.ResponseWriter, code int, reason, format string, args ...any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	json.NewEncoder(w).Encode(map[string]any{
		"kind": "Status", "apiVersion": "v1", "metadata": map[string]any{}, "status": "Failure",
		"message": fmt.Sprintf(format, args...), "reason": reason, "code": code,
	})
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.requests = append(f.requests, request{r.Method, r.URL.Path, r.URL.Query(), r.Header.Clone(), r.ProtoMajor})
	token := f.token
	f.mu.Unlock()
	if r.Header.Get("Authorization") != "Bearer "+token {
		writeStatus(w, 401, "Unauthorized", "Unauthorized")
		return
	}
	name, isObject := strings.CutPrefix(r.URL.Path, collection+"/")
	switch {
	case r.URL.Path == collection && r.Method == http.MethodGet && r.URL.Query().Get("watch") == "1":
		f.watch(w, r)
	case r.URL.Path == collection && r.Method == http.MethodGet:
		f.list(w)
	case r.URL.Path == collection && r.Method == http.MethodPost:
		f.create(w, r)
	case isObject:
		f.object(w, r, name)
	default:
		writeStatus(w, 404, "NotFound", "the server could not find the requested resource")
	}
}

func (f *fakeAPI) list(w http.ResponseWriter) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.lists++
	if f.failLists > 0 {
		f.failLists--
		writeStatus(w, 500, "InternalError", "etcdserver: leader changed")
		return
	}
	items := []json.RawMessage{}
	for _, name := range slices.Sorted(maps.Keys(f.objs)) {
		items = append(items, f.objs[name].json(name))
	}
	json.NewEncoder(w).Encode(map[string]any{
		"kind": "PodList", "apiVersion": "v1",
		"metadata": map[string]string{"resourceVersion": strconv.Itoa(f.rv)},
		"items":    items,
	})
}

func (f *fakeAPI) watch(w http.ResponseWriter, r *http.Request) {
	from, err := strconv.Atoi(r.URL.Query().Get("resourceVersion"))
	f.mu.Lock()
	f.watchFrom = append(f.watchFrom, r.URL.Query().Get("resourceVersion"))
	ended, atOnce, oldest := f.ended, f.atOnce, f.oldest
	f.mu.Unlock()
	if err != nil {
		writeStatus(w, 400, "BadRequest", "this fake needs a resourceVersion")
		return
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(200)
	w.(http.Flusher).Flush()
	if atOnce {
		return
	}
	// Each event in two flushed writes: the client must decode across chunks.
	send := func(typ string, object []byte) {
		b := fmt.Appendf(nil, `{"type":%q,"object":%s}`+"\n", typ, object)
		w.Write(b[:len(b)/2])
		w.(http.Flusher).Flush()
		w.Write(b[len(b)/2:])
		w.(http.Flusher).Flush()
	}
	if from < oldest {
		send(Error, fmt.Appendf(nil, `{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"too old resource version: %d (%d)","reason":"Expired","code":410}`, from, oldest))
		return
	}
	for {
		f.mu.Lock()
		select {
		case <-ended: // before sending what changed with the end
			f.mu.Unlock()
			return
		default:
		}
		var batch []fakeEvent
		for _, e := range f.events {
			if e.rv > from {
				batch = append(batch, e)
			}
		}
		changed := f.changed
		f.mu.Unlock()
		for _, e := range batch {
			send(e.typ, e.object)
			from = e.rv
			f.locked(func() { f.written = e.rv })
		}
		select {
		case <-changed:
		case <-ended:
		case <-r.Context().Done():
			return
		}
	}
}

func (f *fakeAPI) create(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Metadata struct{ Name string } `json:"metadata"`
		Data     map[string]string     `json:"data"`
	}
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || r.Header.Get("Content-Type") != "application/json" {
		writeStatus(w, 400, "BadRequest", "bad body")
		return
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.objs[in.Metadata.Name] != nil {
		writeStatus(w, 409, "AlreadyExists", "pods %q already exists", in.Metadata.Name)
		return
	}
	o := &fakeObj{data: in.Data}
	f.objs[in.Metadata.Name] = o
	f.change(Added, in.Metadata.Name, o)
	w.WriteHeader(201)
	w.Write(o.json(in.Metadata.Name))
}

func (f *fakeAPI) object(w http.ResponseWriter, r *http.Request, name string) {
	body, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	defer f.mu.Unlock()
	o := f.objs[name]
	if o == nil {
		writeStatus(w, 404, "NotFound", "pods %q not found", name)
		return
	}
	switch r.Method {
	case http.MethodGet:
	case http.MethodDelete:
		f.del(name)
	case http.MethodPatch:
		data := maps.Clone(o.data)
		switch r.Header.Get("Content-Type") {
		case string(MergePatch):
			var p struct {
				Metadata struct {
					ResourceVersion string `json:"resourceVersion"`
				} `json:"metadata"`
				Data map[string]*string `json:"data"`
			}
			if err := json.Unmarshal(body, &p); err != nil {
				writeStatus(w, 400, "BadRequest", "%v", err)
				return
			}
			if rv := p.Metadata.ResourceVersion; rv != "" && rv != strconv.Itoa(o.rv) {
				writeStatus(w, 409, "Conflict", "Operation cannot be fulfilled on pods %q: the object has been modified; please apply your changes to the latest version and try again", name)
				return
			}
			for k, v := range p.Data {
				if v == nil {
					delete(data, k)
				} else {
					data[k] = *v
				}
			}
		case string(JSONPatch):
			var ops []struct{ Op, Path, Value string }
			if err := json.Unmarshal(body, &ops); err != nil {
				writeStatus(w, 400, "BadRequest", "%v", err)
				return
			}
			for _, op := range ops {
				k, ok := strings.CutPrefix(op.Path, "/data/")
				if !ok || (op.Op != "add" && op.Op != "replace") {
					writeStatus(w, 422, "Invalid", "this fake does not do %s %s", op.Op, op.Path)
					return
				}
				data[k] = op.Value
			}
		default:
			writeStatus(w, 415, "UnsupportedMediaType", "the body of the request was in an unknown format")
			return
		}
		o.data = data
		f.change(Modified, name, o)
	default:
		writeStatus(w, 405, "MethodNotAllowed", "no %s", r.Method)
		return
	}
	w.Write(o.json(name))
}

// sent returns the requests so far and forgets them.
func (f *fakeAPI) sent() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	r := f.requests
	f.requests = nil
	return r
}
