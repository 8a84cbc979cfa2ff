package kube

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
)

// APIError is an unsuccessful answer from the API server: the HTTP status
// code and, when the body was a metav1.Status, its reason and message.
// Requests return it wrapped with their method and path; use errors.As, or
// IsNotFound, IsConflict, IsAlreadyExists and IsGone.
type APIError struct {
	Code    int
	Reason  string // e.g. NotFound, Conflict, Expired; may be empty
	Message string
}

func (e *APIError) Error() string {
	reason := e.Reason
	if reason == "" {
		reason = http.StatusText(e.Code)
	}
	s := fmt.Sprintf("%d %s", e.Code, reason)
	if e.Message != "" {
		s += ": " + e.Message
	}
	return s
}

// status is the part of a metav1.Status this package reads.
type status struct {
	Kind    string `json:"kind"`
	Code    int    `json:"code"`
	Reason  string `json:"reason"`
	Message string `json:"message"`
}

// maxErrorBody bounds what is read of an error response: a Status is small,
// a misbehaving proxy's page need not be.
const maxErrorBody = 64 << 10

// readAPIError reads the body of an unsuccessful response.
func readAPIError(resp *http.Response) *APIError {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
	e := &APIError{Code: resp.StatusCode}
	var s status
	if json.Unmarshal(b, &s) == nil && s.Kind == "Status" {
		e.Reason, e.Message = s.Reason, s.Message
		return e
	}
	// Not a Status (a proxy or load balancer answered): quote the start.
	msg := strings.Join(strings.Fields(string(b)), " ")
	if len(msg) > 200 {
		msg = strings.ToValidUTF8(msg[:200], "") + "…"
	}
	e.Message = msg
	return e
}

func apiError(err error) *APIError {
	var e *APIError
	if errors.As(err, &e) {
		return e
	}
	return nil
}

// IsNotFound reports whether err is a 404 from the server.
func IsNotFound(err error) bool {
	e := apiError(err)
	return e != nil && e.Code == http.StatusNotFound
}

// IsConflict reports whether err is a 409 Conflict from the server: a stale
// resourceVersion in an update or patch. AlreadyExists, also a 409, is not.
func IsConflict(err error) bool {
	e := apiError(err)
	return e != nil && e.Code == http.StatusConflict && e.Reason != "AlreadyExists"
}

// IsAlreadyExists reports whether err is the server refusing to create an
// object that exists.
func IsAlreadyExists(err error) bool {
	e := apiError(err)
	return e != nil && e.Code == http.StatusConflict && e.Reason == "AlreadyExists"
}

// IsGone reports whether err says a resourceVersion is too old to watch or
// list from (410, reason Expired or Gone): the caller must list afresh.
func IsGone(err error) bool {
	e := apiError(err)
	return e != nil && (e.Code == http.StatusGone || e.Reason == "Expired" || e.Reason == "Gone")
}
