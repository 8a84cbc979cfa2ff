// Package kube is the small Kubernetes API client the node agent needs: JSON
// requests to API paths (get, list, create, patch, delete), watches, and
// ListWatch, a list-then-watch loop in the manner of client-go's reflector.
//
// It is built on the standard library only. The syscage binary also runs as
// the OCI hook and the runc wrapper for every container on a node, and
// importing k8s.io/client-go or apimachinery would add megabytes and their
// package init to each of those starts.
package kube
