package main

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"sigs.k8s.io/yaml"

	"github.com/syscage/syscage/hooks/kubeapi"
)

// docSeparator separates the documents of a YAML stream.
var docSeparator = regexp.MustCompile(`(?m)^---[ \t]*$`)

var jobsGVR = schema.GroupVersionResource{Group: "batch", Version: "v1", Resource: "jobs"}

// newToken is the value of recordLabel for one recording.
func newToken() string {
	b := make([]byte, 6)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// readManifest reads the one object of a manifest file for record --create,
// in namespace ns unless it names its own.
func readManifest(path, ns string) (workloadRef, *unstructured.Unstructured, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return workloadRef{}, nil, fmt.Errorf("-f: %w", err)
	}
	docs := 0
	for _, d := range docSeparator.Split(string(data), -1) {
		if strings.TrimSpace(d) != "" {
			docs++
		}
	}
	if docs != 1 {
		return workloadRef{}, nil, fmt.Errorf("-f %s: holds %d objects: give a file with the one workload to record", path, docs)
	}
	if data, err = yaml.YAMLToJSON(data); err != nil {
		return workloadRef{}, nil, fmt.Errorf("-f %s: neither JSON nor YAML: %w", path, err)
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return workloadRef{}, nil, fmt.Errorf("-f %s: %w", path, err)
	}
	wk, ok := kindOf(u.GetKind())
	if !ok || u.GetAPIVersion() != strings.TrimPrefix(wk.Group+"/"+wk.Version, "/") {
		return workloadRef{}, nil, fmt.Errorf("-f %s: %s %s is not a workload record can create: give a Job, CronJob, Pod, Deployment, StatefulSet, DaemonSet or ReplicaSet", path, u.GetAPIVersion(), u.GetKind())
	}
	if u.GetName() == "" {
		return workloadRef{}, nil, fmt.Errorf("-f %s: metadata.name is not set: record names the profiles after it", path)
	}
	if u.GetNamespace() == "" {
		u.SetNamespace(ns)
	}
	return workloadRef{wk, u.GetName()}, u, nil
}

// labelPath is where a workload's pods get their labels: its pod template's,
// or a Pod's own.
func (w *workload) labelPath() []string {
	return append(append([]string{}, w.templatePath...), "metadata", "labels")
}

// setLabel sets recordLabel on the pod template of an object to be created.
func (w *workload) setLabel(token string) error {
	return unstructured.SetNestedField(w.obj.Object, token, append(w.labelPath(), recordLabel)...)
}

// patchLabel sets (or with "" removes) recordLabel on the pod template of a
// workload in the cluster, or on a Pod.
func (c *clients) patchLabel(ctx context.Context, w *workload, token string) error {
	var v any = token
	if token == "" {
		v = nil
	}
	patch := map[string]any{recordLabel: v}
	path := w.labelPath()
	for i := len(path) - 1; i >= 0; i-- {
		patch = map[string]any{path[i]: patch}
	}
	data, err := json.Marshal(patch)
	if err != nil {
		return err
	}
	_, err = c.dyn.Resource(w.ref.gvr()).Namespace(w.namespace).Patch(ctx, w.ref.Name, types.MergePatchType, data, metav1.PatchOptions{FieldManager: fieldManager})
	if err != nil {
		return fmt.Errorf("labelling %s %s=%s: %w", w.ref, recordLabel, token, err)
	}
	return nil
}

// jobDone says what a Job still waits for, "" once it completed or failed;
// outcome is then what became of it.
func (c *clients) jobDone(ctx context.Context, w *workload, outcome *string) (pending, error) {
	u, err := c.dyn.Resource(w.ref.gvr()).Namespace(w.namespace).Get(ctx, w.ref.Name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("getting %s: %w", w.ref, err)
	}
	active, _, _ := unstructured.NestedInt64(u.Object, "status", "active")
	succeeded, _, _ := unstructured.NestedInt64(u.Object, "status", "succeeded")
	failed, _, _ := unstructured.NestedInt64(u.Object, "status", "failed")
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	for _, cond := range conds {
		m, _ := cond.(map[string]any)
		if m["status"] != "True" {
			continue
		}
		switch m["type"] {
		case "Complete":
			*outcome = fmt.Sprintf("%s completed: %s succeeded", w.ref, plural(int(succeeded), "pod"))
			if failed > 0 {
				*outcome += fmt.Sprintf(", %d failed (what the failed ones did until then is in the profiles)", failed)
			}
			return "", nil
		case "Failed":
			reason, _ := m["reason"].(string)
			*outcome = fmt.Sprintf("%s failed (%s): %d pods succeeded, %d failed; the profiles hold what its pods did until they ended", w.ref, reason, succeeded, failed)
			return "", nil
		}
	}
	return fmt.Sprintf("%s: %d active, %d succeeded, %d failed", w.ref, active, succeeded, failed), nil
}

// podDone says what a Pod still waits for, "" once it has ended.
func (c *clients) podDone(ctx context.Context, w *workload, outcome *string) (pending, error) {
	u, err := c.dyn.Resource(w.ref.gvr()).Namespace(w.namespace).Get(ctx, w.ref.Name, metav1.GetOptions{})
	if apierrors.IsNotFound(err) {
		*outcome = fmt.Sprintf("%s was deleted while recorded: the profiles hold what it did until then", w.ref)
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("getting %s: %w", w.ref, err)
	}
	phase, _, _ := unstructured.NestedString(u.Object, "status", "phase")
	switch phase {
	case "Succeeded":
		*outcome = w.ref.String() + " succeeded"
		return "", nil
	case "Failed":
		reason, _, _ := unstructured.NestedString(u.Object, "status", "reason")
		*outcome = fmt.Sprintf("%s failed%s: the profiles hold what it did until then", w.ref, strings.TrimSuffix(" ("+reason+")", " ()"))
		return "", nil
	}
	return fmt.Sprintf("%s is %s", w.ref, strings.ToLower(cmp.Or(phase, "Pending"))), nil
}

// cronRuns says how many of a CronJob's runs labelled token are still to
// finish of the n wanted.
func (c *clients) cronRuns(ctx context.Context, w *workload, token string, n int, outcome *string) (pending, error) {
	cj, err := c.dyn.Resource(w.ref.gvr()).Namespace(w.namespace).Get(ctx, w.ref.Name, metav1.GetOptions{})
	if err != nil {
		return "", fmt.Errorf("getting %s: %w", w.ref, err)
	}
	jobs, err := c.dyn.Resource(jobsGVR).Namespace(w.namespace).List(ctx, metav1.ListOptions{})
	if err != nil {
		return "", fmt.Errorf("listing the Jobs of %s: %w", w.ref, err)
	}
	var done, failed, running int
	for _, j := range jobs.Items {
		if owner := metav1.GetControllerOf(&j); owner == nil || owner.UID != cj.GetUID() {
			continue
		}
		if v, _, _ := unstructured.NestedString(j.Object, "spec", "template", "metadata", "labels", recordLabel); v != token {
			continue
		}
		state := ""
		conds, _, _ := unstructured.NestedSlice(j.Object, "status", "conditions")
		for _, cond := range conds {
			m, _ := cond.(map[string]any)
			if t, _ := m["type"].(string); m["status"] == "True" && (t == "Complete" || t == "Failed") {
				state = t
			}
		}
		switch state {
		case "Complete":
			done++
		case "Failed":
			done++
			failed++
		default:
			running++
		}
	}
	if done >= n {
		*outcome = fmt.Sprintf("%s: %s recorded", w.ref, plural(done, "run"))
		if failed > 0 {
			*outcome += fmt.Sprintf(", %d of them failed (what they did until then is in the profiles)", failed)
		}
		return "", nil
	}
	return fmt.Sprintf("%d of %s finished, %d running", done, plural(n, "run"), running), nil
}

// targetOptions are record's flags for what it records besides a workload's
// running pods.
type targetOptions struct {
	create      bool // record --create -f FILE
	runs        int
	durationSet bool // --duration was given: it bounds a wait for completion
}

// setTarget arranges what a session records for the kinds that need more than
// a selector: it labels a Pod or a CronJob's runs, or creates the object of
// record --create, once every agent records, and says what to wait for. It
// returns what undoes the labelling, and where the outcome will be.
func setTarget(ctx context.Context, log io.Writer, s *session, token string, to targetOptions) (cleanup func(), outcome *string) {
	c, w := s.run.c, s.w
	outcome = new(string)
	cleanup = func() {}
	switch {
	case to.create:
		s.armed = func(ctx context.Context) error {
			if err := w.setLabel(token); err != nil {
				return err
			}
			_, err := c.dyn.Resource(w.ref.gvr()).Namespace(w.namespace).Create(ctx, w.obj, metav1.CreateOptions{FieldManager: fieldManager})
			if apierrors.IsAlreadyExists(err) {
				return fmt.Errorf("--create: %s exists in namespace %q: delete it first (kubectl -n %s delete %s), or record it as %s", w.ref, w.namespace, w.namespace, w.ref, w.ref)
			}
			if err != nil {
				return fmt.Errorf("creating %s: %w", w.ref, err)
			}
			fmt.Fprintf(log, "every agent is ready; created %s, recorded from its first syscall\n", w.ref)
			return nil
		}
	case w.ref.Kind == "Pod" || w.ref.Kind == "CronJob":
		s.armed = func(ctx context.Context) error {
			if err := c.patchLabel(ctx, w, token); err != nil {
				return err
			}
			if w.ref.Kind == "Pod" {
				fmt.Fprintf(log, "note: %s is attached to while running: the calls it made before now, its start-up above all, will not be seen; "+
					"use 'record --create -f FILE' to record a new pod from its first syscall\n", w.ref)
			} else {
				fmt.Fprintf(log, "every agent is ready; the next runs of %s are recorded from their first syscall\n", w.ref)
			}
			return nil
		}
		cleanup = func() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
			defer cancel()
			if err := c.patchLabel(ctx, w, ""); err != nil && !apierrors.IsNotFound(err) {
				fmt.Fprintf(log, "warning: %v: remove the label with 'kubectl -n %s label %s %s-'\n", err, w.namespace, w.ref, recordLabel)
			}
		}
	}
	s.limited = to.durationSet || !(to.create || to.runs > 0)
	switch {
	case w.ref.Kind == "Job":
		s.waiting = w.ref.String() + " completes"
		s.until = func(ctx context.Context) (pending, error) { return c.jobDone(ctx, w, outcome) }
	case w.ref.Kind == "Pod":
		s.waiting = w.ref.String() + " ends"
		s.until = func(ctx context.Context) (pending, error) { return c.podDone(ctx, w, outcome) }
	case w.ref.Kind == "CronJob" && (to.runs > 0 || to.create):
		n := max(to.runs, 1)
		s.waiting = fmt.Sprintf("%s of %s finish", plural(n, "run"), w.ref)
		s.until = func(ctx context.Context) (pending, error) { return c.cronRuns(ctx, w, token, n, outcome) }
	}
	return cleanup, outcome
}

// tokenSelector selects the pods labelled token.
func tokenSelector(token string) kubeapi.LabelSelector {
	return kubeapi.LabelSelector{MatchLabels: map[string]string{recordLabel: token}}
}
