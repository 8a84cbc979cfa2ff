package kube

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"time"
)

// Types of watch events.
const (
	Added    = "ADDED"
	Modified = "MODIFIED"
	Deleted  = "DELETED"
	// Bookmark carries only a newer metadata.resourceVersion to watch from.
	Bookmark = "BOOKMARK"
	// Error carries a metav1.Status; Watch returns it as an *APIError.
	Error = "ERROR"
)

// Event is one event of a watch.
type Event struct {
	Type   string          `json:"type"`
	Object json.RawMessage `json:"object"`
}

// Watch watches the collection at path with the query q (labelSelector,
// fieldSelector, …) from resourceVersion, calling fn with each ADDED,
// MODIFIED, DELETED and BOOKMARK event in turn. It returns nil when the server
// ends the watch, which it does after a few minutes; the error fn returns,
// which stops the watch; or an error. An ERROR event ends the watch with its
// Status as an *APIError: IsGone(err) says resourceVersion is too old and the
// caller must list again.
func (c *Client) Watch(ctx context.Context, path string, q url.Values, resourceVersion string, fn func(Event) error) error {
	wq := url.Values{}
	for k, v := range q {
		wq[k] = v
	}
	wq.Set("watch", "1")
	wq.Set("allowWatchBookmarks", "true")
	if resourceVersion != "" {
		wq.Set("resourceVersion", resourceVersion)
	}
	// Jittered, so that the agents of a cluster do not all watch again at once.
	timeout := 5*time.Minute + rand.N(time.Minute)
	if s, err := strconv.Atoi(wq.Get("timeoutSeconds")); err == nil && s > 0 {
		timeout = time.Duration(s) * time.Second
	} else {
		wq.Set("timeoutSeconds", strconv.Itoa(int(timeout/time.Second)))
	}
	// The server ends the watch at timeoutSeconds. Past that, the connection
	// is dead without the client having noticed.
	ctx, cancel := context.WithTimeout(ctx, timeout+30*time.Second)
	defer cancel()

	resp, err := c.send(ctx, http.MethodGet, path, wq, "", nil)
	if err != nil {
		return fmt.Errorf("watching %s from %q: %w", path, resourceVersion, err)
	}
	defer resp.Body.Close()
	// The server writes one JSON object per line, flushing each.
	dec := json.NewDecoder(resp.Body)
	for {
		var e Event
		switch err := dec.Decode(&e); {
		case err == io.EOF:
			return nil
		case err != nil:
			return fmt.Errorf("watching %s from %q: %w", path, resourceVersion, err)
		}
		if e.Type == Error {
			var s status
			if err := json.Unmarshal(e.Object, &s); err != nil {
				return fmt.Errorf("watching %s from %q: ERROR event: %w", path, resourceVersion, err)
			}
			return fmt.Errorf("watching %s from %q: %w", path, resourceVersion, &APIError{Code: s.Code, Reason: s.Reason, Message: s.Message})
		}
		if err := fn(e); err != nil {
			return err
		}
	}
}

// Handler receives what ListWatch learns of a collection.
type Handler interface {
	// Replace is given the complete collection after each list: objects the
	// handler knows that are not among items were deleted meanwhile.
	Replace(items []json.RawMessage)
	// Event is given each ADDED, MODIFIED and DELETED event between lists.
	Event(e Event)
}

// ListWatch keeps h up to date with the collection at path, filtered by the
// query q, until ctx is done. It lists, gives h the list with Replace, then
// watches from the list's resourceVersion, giving h each event, and watches
// again from the latest resourceVersion seen (in events and bookmarks) when
// the server ends a watch. When that resourceVersion is too old (410 Gone), it
// lists again. After a failure it waits, from 200ms doubling to 10s, jittered,
// and logs the failure to c.Log.
//
// The first call on h is Replace, once the first list has succeeded: a
// caller that must know its cache is filled notes it there. h's methods are
// called one at a time, from the goroutine calling ListWatch; they should
// return promptly, as the watch waits meanwhile.
func (c *Client) ListWatch(ctx context.Context, path string, q url.Values, h Handler) {
	log := c.log().With("path", path)
	b := backoff{min: c.minBackoff, max: c.maxBackoff}
	for ctx.Err() == nil {
		var l RawList
		if err := c.List(ctx, path, q, &l); err != nil {
			if ctx.Err() == nil {
				log.Warn("listing", "err", err)
				b.wait(ctx)
			}
			continue
		}
		h.Replace(l.Items)
		rv := l.Metadata.ResourceVersion
		for ctx.Err() == nil {
			start, delivered := time.Now(), false
			err := c.Watch(ctx, path, q, rv, func(e Event) error {
				delivered = true
				var o struct {
					Metadata struct {
						ResourceVersion string `json:"resourceVersion"`
					} `json:"metadata"`
				}
				if json.Unmarshal(e.Object, &o) == nil && o.Metadata.ResourceVersion != "" {
					rv = o.Metadata.ResourceVersion
				}
				switch e.Type {
				case Added, Modified, Deleted:
					h.Event(e)
				}
				return nil
			})
			if ctx.Err() != nil {
				return
			}
			// A watch that ends at once having delivered nothing, even
			// without an error, must not make a busy loop.
			healthy := delivered || time.Since(start) > 10*time.Second
			if healthy {
				b.reset()
			}
			if err != nil && !IsGone(err) {
				log.Warn("watching", "err", err)
				b.wait(ctx)
				continue
			}
			if !healthy {
				b.wait(ctx)
			}
			if err != nil {
				log.Info("resourceVersion expired, listing again", "resourceVersion", rv)
				break
			}
		}
	}
}

// backoff is a capped, jittered exponential wait.
type backoff struct {
	min, max, cur time.Duration
}

func (b *backoff) reset() { b.cur = 0 }

// wait waits between cur/2 and cur, cur doubling from min to max at each call.
func (b *backoff) wait(ctx context.Context) {
	b.cur = min(max(2*b.cur, b.min), b.max)
	t := time.NewTimer(b.cur/2 + rand.N(b.cur/2+1))
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}
