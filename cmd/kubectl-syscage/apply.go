package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"slices"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/spf13/cobra"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/client-go/dynamic"

	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/oci/artifact"
	"github.com/syscage/syscage/profile"
)

type applyOptions struct {
	profiles []string
	// from, with layout and plainHTTP, names a profile stored as an OCI artifact.
	from      string
	layout    string
	plainHTTP bool
	name      string
	timeout   time.Duration
	noSPO     bool
	wait      bool
}

func newApplyCmd(o *rootOptions) *cobra.Command {
	opts := &applyOptions{}
	cmd := &cobra.Command{
		Use:   "apply WORKLOAD --profile DIR|FILE|NAME=FILE | --from REF",
		Short: "Install profiles on every node and make a workload's containers use them",
		Long: `Install OCI seccomp profiles on every node, then set the workload's
securityContext.seccompProfile to them (type Localhost), which rolls its pods.

--profile DIR gives each container, init containers included, its own profile,
DIR/CONTAINER.json (as record -o DIR/ writes them), set in that container's
securityContext; --profile NAME=FILE, repeated, does the same for the containers
named. --profile FILE sets one profile for the whole pod, in the pod's
securityContext. A profile per container is installed as NAME-CONTAINER, NAME
being --name or the workload's name.

Where the security-profiles-operator serves its SeccompProfile API, the profile
becomes a SeccompProfile the operator installs (unless --no-spo), in the version
and scope discovery reports: since the operator's 1.0, v1 and cluster-scoped,
named NAMESPACE-NAME unless --name is given; before, v1beta1 in the workload's
namespace. The pods then use the path the operator reports in
status.localhostProfile. Otherwise it becomes a SyscallProfile that the syscage
agents write to the kubelet's seccomp directory of every node. Either way, apply
waits until every profile is installed before it changes the workload.

A SyscallProfile also carries, in spec.coverage, the counts record wrote beside
the profile (FILE.coverage, DIR/CONTAINER.json.coverage), where there are any:
how many of the recorded runs made each call that not all of them made. A
SeccompProfile carries them as JSON in its syscage.io/coverage annotation.

--from REF pulls one profile for the whole pod from an OCI artifact (syscage
push), checked as 'syscage pull' checks it, and applies it as --profile FILE does.`,
		Example: `  kubectl syscage apply deployment/web --profile web/
  kubectl syscage apply deploy/web --profile app=app.json --profile proxy=proxy.json
  kubectl syscage apply deployment/web --from registry.example.com/profiles/web:v1
  kubectl syscage apply sts/db -n prod --profile db.json --name db-v2 --wait`,
		Args:              cobra.ExactArgs(1),
		ValidArgsFunction: completeWorkload(o),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runApply(cmd.Context(), o, opts, args[0])
		},
	}
	f := cmd.Flags()
	f.StringArrayVar(&opts.profiles, "profile", nil, "the profiles to apply: a `DIR` of CONTAINER.json, NAME=FILE per container (repeated), or one FILE for the whole pod")
	f.StringVar(&opts.from, "from", "", "pull one profile for the whole pod from the OCI artifact `REF` (REGISTRY/REPOSITORY:TAG[@DIGEST])")
	f.StringVar(&opts.layout, "oci-layout", "", "with --from, an OCI image layout `DIR` instead of a registry (REF is then TAG or @DIGEST)")
	f.BoolVar(&opts.plainHTTP, "plain-http", false, "with --from, talk to the registry over HTTP (a registry on loopback)")
	f.StringVar(&opts.name, "name", "", "name of the profile object (default: the workload's name; per container, NAME-CONTAINER)")
	f.DurationVar(&opts.timeout, "timeout", 2*time.Minute, "how long each wait for the cluster may take (nodes, rollout)")
	f.BoolVar(&opts.noSPO, "no-spo", false, "use syscage's agents even where the security-profiles-operator is installed")
	f.BoolVar(&opts.wait, "wait", false, "wait for the workload's rollout to complete")
	cmd.MarkFlagsOneRequired("profile", "from")
	cmd.MarkFlagsMutuallyExclusive("profile", "from")
	return cmd
}

func runApply(ctx context.Context, o *rootOptions, opts *applyOptions, arg string) error {
	out := o.streams.Out
	ref, err := parseWorkload(arg)
	if err != nil {
		return err
	}
	if opts.timeout <= 0 {
		return fmt.Errorf("--timeout %s: give a positive duration, e.g. 2m", opts.timeout)
	}
	name := opts.name
	if name == "" {
		name = ref.Name
	}
	if errs := validation.IsDNS1123Subdomain(name); len(errs) > 0 {
		return fmt.Errorf("--name %q: %s", name, strings.Join(errs, "; "))
	}
	var set *profileSet
	if opts.from != "" {
		if set, err = pulledProfile(ctx, o.streams.ErrOut, opts); err != nil {
			return err
		}
	} else if podProfile(opts.profiles) {
		// Checked before the cluster is asked anything.
		if set, err = readProfiles(opts.profiles, nil, nil); err != nil {
			return err
		}
	}
	c, err := o.connect()
	if err != nil {
		return err
	}
	w, err := c.getWorkload(ctx, ref)
	if err != nil {
		return err
	}
	if set == nil {
		if set, err = readProfiles(opts.profiles, w, nil); err != nil {
			return err
		}
	}
	if w.ref.Kind == "ReplicaSet" && w.controller != "" {
		return fmt.Errorf("%s is managed by %s, which would undo a change to its template: apply to %s instead", w.ref, w.controller, w.controller)
	}
	var spo spoAPI
	if !opts.noSPO {
		if spo, err = c.spoVersion(); err != nil {
			return err
		}
	}
	// install puts one profile on every node, and returns its localhostProfile.
	install := func(p *specs.LinuxSeccomp, cov *profile.Coverage, name string) (string, error) {
		if spo.GroupVersion == "" {
			return c.applySyscallProfile(ctx, out, o.streams.ErrOut, p, cov, name, w.namespace, opts.timeout)
		}
		obj := spoName(spo, w.namespace, name, opts.name != "")
		if errs := validation.IsDNS1123Subdomain(obj); len(errs) > 0 {
			return "", fmt.Errorf("SeccompProfile name %q: %s: choose one with --name", obj, strings.Join(errs, "; "))
		}
		return c.applySPO(ctx, out, p, cov, obj, w.namespace, spo, opts.timeout)
	}
	if set.perContainer() {
		return applyPerContainer(ctx, o, opts, c, w, set, name, install)
	}
	localhost, err := install(set.pod, set.podCoverage, name)
	if err != nil {
		return err
	}

	want := &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: &localhost}
	for _, msg := range containerOverrides(w.template.Spec) {
		fmt.Fprintln(o.streams.ErrOut, "warning:", msg)
	}
	if sc := w.template.Spec.SecurityContext; sc != nil && sameSeccomp(sc.SeccompProfile, want) {
		fmt.Fprintf(out, "%s: its pods already use seccompProfile Localhost %s; pods started before keep the profile they started with (kubectl -n %s rollout restart %s)\n",
			w.ref, localhost, w.namespace, w.ref)
		return nil
	}
	if immutable(w) {
		fmt.Fprintf(out, "%s: its pods cannot change their seccompProfile; to use the profile, set this in the pod's securityContext (in its manifest) and create it again:\n"+
			"  seccompProfile: {type: Localhost, localhostProfile: %s}\n", w.ref, localhost)
		return nil
	}
	patch, err := json.Marshal(w.templatePatch(map[string]any{"securityContext": map[string]any{"seccompProfile": want}}))
	if err != nil {
		return err
	}
	if err := c.patchTemplate(ctx, w, patch); err != nil {
		return err
	}
	fmt.Fprintf(out, "%s: pod template securityContext.seccompProfile set to Localhost %s\n", w.ref, localhost)
	return afterPatch(ctx, out, c, w, opts)
}

// applyPerContainer installs a profile per container, then sets each in its
// container's securityContext, in one patch.
func applyPerContainer(ctx context.Context, o *rootOptions, opts *applyOptions, c *clients, w *workload, set *profileSet,
	base string, install func(*specs.LinuxSeccomp, *profile.Coverage, string) (string, error)) error {
	out := o.streams.Out
	for _, cn := range set.names() {
		if errs := validation.IsDNS1123Subdomain(base + "-" + cn); len(errs) > 0 {
			return fmt.Errorf("profile name %q for container %s: %s: choose a shorter --name", base+"-"+cn, cn, strings.Join(errs, "; "))
		}
	}
	// Every profile is on every node before any pod may use one.
	localhost := map[string]string{}
	for _, cn := range set.names() {
		lp, err := install(set.containers[cn], set.coverage[cn], base+"-"+cn)
		if err != nil {
			return fmt.Errorf("container %s: %w", cn, err)
		}
		localhost[cn] = lp
	}
	entries := func(ctrs []corev1.Container) (list []any, changed []string) {
		for _, ctr := range ctrs {
			lp, ok := localhost[ctr.Name]
			if !ok {
				continue
			}
			want := &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeLocalhost, LocalhostProfile: &lp}
			if ctr.SecurityContext != nil && sameSeccomp(ctr.SecurityContext.SeccompProfile, want) {
				continue
			}
			list = append(list, map[string]any{"name": ctr.Name, "securityContext": map[string]any{"seccompProfile": want}})
			changed = append(changed, ctr.Name)
		}
		return list, changed
	}
	initList, initChanged := entries(w.template.Spec.InitContainers)
	list, changed := entries(w.template.Spec.Containers)
	if len(initList)+len(list) == 0 {
		fmt.Fprintf(out, "%s: its containers already use these profiles; pods started before keep the profiles they started with (kubectl -n %s rollout restart %s)\n",
			w.ref, w.namespace, w.ref)
		return nil
	}
	spec := map[string]any{}
	if len(initList) > 0 {
		spec["initContainers"] = initList
	}
	if len(list) > 0 {
		spec["containers"] = list
	}
	if immutable(w) {
		fmt.Fprintf(out, "%s: its pods cannot change their seccompProfile; to use the profiles, set these in its manifest and create it again:\n", w.ref)
		for _, cn := range append(initChanged, changed...) {
			fmt.Fprintf(out, "  container %s: securityContext: {seccompProfile: {type: Localhost, localhostProfile: %s}}\n", cn, localhost[cn])
		}
		return nil
	}
	patch, err := json.Marshal(w.templatePatch(spec))
	if err != nil {
		return err
	}
	if err := c.patchTemplate(ctx, w, patch); err != nil {
		return err
	}
	for _, cn := range append(initChanged, changed...) {
		fmt.Fprintf(out, "%s: container %s securityContext.seccompProfile set to Localhost %s\n", w.ref, cn, localhost[cn])
	}
	return afterPatch(ctx, out, c, w, opts)
}

// immutable reports whether a workload's pod template cannot change: a Job's
// (spec.template is immutable) and a Pod's own.
func immutable(w *workload) bool { return w.ref.Kind == "Job" || w.ref.Kind == "Pod" }

// templatePatch is a patch of the pod template's spec, wherever the template
// is in the workload.
func (w *workload) templatePatch(spec map[string]any) map[string]any {
	patch := map[string]any{"spec": spec}
	for i := len(w.templatePath) - 1; i >= 0; i-- {
		patch = map[string]any{w.templatePath[i]: patch}
	}
	return patch
}

// patchTemplate sends a strategic merge patch of the workload: containers
// merge by name.
func (c *clients) patchTemplate(ctx context.Context, w *workload, patch []byte) error {
	if _, err := c.dyn.Resource(w.ref.gvr()).Namespace(w.namespace).Patch(ctx, w.ref.Name, types.StrategicMergePatchType, patch, metav1.PatchOptions{FieldManager: fieldManager}); err != nil {
		return fmt.Errorf("setting the seccompProfile of %s: %w", w.ref, err)
	}
	return nil
}

// afterPatch says what happens to the pods, and waits for the rollout with --wait.
func afterPatch(ctx context.Context, out io.Writer, c *clients, w *workload, opts *applyOptions) error {
	switch {
	case w.ref.Kind == "CronJob":
		fmt.Fprintf(out, "the next runs of %s use it; runs already started keep theirs\n", w.ref)
	case w.onDelete:
		fmt.Fprintf(out, "%s does not replace its pods for a new template: new pods use the profile, running ones keep theirs until they are deleted\n", w.ref)
	case opts.wait:
		if err := c.waitRollout(ctx, w, opts.timeout); err != nil {
			return err
		}
		fmt.Fprintf(out, "%s rolled out\n", w.ref)
	default:
		fmt.Fprintf(out, "its pods are being replaced: kubectl -n %s rollout status %s\n", w.namespace, w.ref)
	}
	return nil
}

// pulledProfile pulls --from's profile, for the whole pod.
func pulledProfile(ctx context.Context, log io.Writer, opts *applyOptions) (*profileSet, error) {
	pulled, err := artifact.Pull(ctx, opts.from, artifact.Options{Layout: opts.layout, PlainHTTP: opts.plainHTTP})
	if err != nil {
		return nil, err
	}
	if err := storable(pulled.Profile); err != nil {
		return nil, fmt.Errorf("--from %s: %w", opts.from, err)
	}
	fmt.Fprintf(log, "pulled %s (%s)\n", opts.from, pulled.Manifest.Digest)
	return &profileSet{pod: pulled.Profile, podFile: opts.from, what: "--from " + opts.from}, nil
}

// sameSeccomp reports whether a seccompProfile is already want.
func sameSeccomp(have, want *corev1.SeccompProfile) bool {
	return have != nil && have.Type == want.Type && have.LocalhostProfile != nil && *have.LocalhostProfile == *want.LocalhostProfile
}

// containerOverrides warns about containers that set their own seccompProfile:
// it takes precedence over the pod's.
func containerOverrides(spec corev1.PodSpec) []string {
	var out []string
	all := append(slices.Clone(spec.InitContainers), spec.Containers...)
	for _, ctr := range all {
		if sc := ctr.SecurityContext; sc != nil && sc.SeccompProfile != nil {
			what := string(sc.SeccompProfile.Type)
			if lp := sc.SeccompProfile.LocalhostProfile; lp != nil {
				what += " " + *lp
			}
			out = append(out, fmt.Sprintf("container %s sets its own seccompProfile (%s), which overrides the pod's: remove it from the container's securityContext for the profile to apply to that container", ctr.Name, what))
		}
	}
	return out
}

// applySyscallProfile creates or updates the SyscallProfile and waits until every
// node with a Ready agent has written it. It returns the localhostProfile. cov,
// if set, goes into the object for the profile's reviewers.
func (c *clients) applySyscallProfile(ctx context.Context, out, log io.Writer, p *specs.LinuxSeccomp, cov *profile.Coverage, name, ns string, timeout time.Duration) (string, error) {
	agents, err := c.agentNodes(ctx)
	if err != nil {
		return "", err
	}
	data, err := profile.Marshal(p)
	if err != nil {
		return "", err
	}
	want := kubeapi.Digest(data)
	c.warnAgentless(ctx, log, agents)
	obj := kubeapi.SyscallProfile{
		APIVersion: kubeapi.APIVersion,
		Kind:       kubeapi.KindProfile,
		Metadata:   kubeapi.ObjectMeta{Name: name, Namespace: ns, Labels: map[string]string{managedByLabel: fieldManager}},
		Spec:       kubeapi.ProfileSpec{Profile: p, Coverage: cov},
	}
	u, err := toUnstructured(obj)
	if err != nil {
		return "", err
	}
	delete(u.Object, "status")
	applied, err := c.applyObject(ctx, profilesGVR, true, u)
	if err != nil {
		return "", fmt.Errorf("writing SyscallProfile %s/%s: %w", ns, name, notInstalled(err))
	}
	// The agents write what the API server stored: make sure it is the profile.
	var stored kubeapi.SyscallProfile
	if err := fromUnstructured(applied, &stored); err != nil {
		return "", err
	}
	if stored.Spec.Profile == nil {
		return "", fmt.Errorf("SyscallProfile %s/%s: the API server stored no profile", ns, name)
	}
	if got, err := profile.Marshal(stored.Spec.Profile); err != nil || kubeapi.Digest(got) != want {
		return "", fmt.Errorf("SyscallProfile %s/%s: the API server stored a profile other than the file's (argument values of 2^63 and more do not survive a custom resource): use values below 2^63", ns, name)
	}
	localhost := kubeapi.LocalhostProfile(ns, name)
	if stored.Status.LocalhostProfile != localhost {
		body, _ := json.Marshal(map[string]any{"status": map[string]any{"localhostProfile": localhost}})
		if _, err := c.dyn.Resource(profilesGVR).Namespace(ns).Patch(ctx, name, types.MergePatchType, body, metav1.PatchOptions{FieldManager: fieldManager}, "status"); err != nil {
			return "", fmt.Errorf("writing the status of SyscallProfile %s/%s: %w", ns, name, err)
		}
	}
	err = c.poll(ctx, timeout, fmt.Sprintf("every agent to write SyscallProfile %s/%s", ns, name), func(ctx context.Context) (pending, error) {
		copies, err := c.nodeCopies(ctx, ns, name)
		if err != nil {
			return "", err
		}
		waiting, failed := profileProgress(copies, agents, want)
		if len(failed) > 0 {
			return "", fmt.Errorf("SyscallProfile %s/%s could not be written on every node: %s", ns, name, strings.Join(failed, "; "))
		}
		if len(waiting) > 0 {
			return "not yet written on " + describeNodes(waiting, agents), nil
		}
		return "", nil
	})
	if err != nil {
		return "", err
	}
	fmt.Fprintf(out, "syscallprofile %s/%s: written on %s as %s (%s)\n", ns, name, plural(len(agents), "node"), localhost, want)
	return localhost, nil
}

// warnAgentless warns about nodes without a Ready agent: no one writes the
// profile there, so pods that use it cannot start there. Nodes that cannot be
// listed (RBAC) are not checked.
func (c *clients) warnAgentless(ctx context.Context, log io.Writer, agents map[string]string) {
	nodes, err := c.core.Nodes().List(ctx, metav1.ListOptions{})
	if err != nil {
		return
	}
	var missing []string
	for _, n := range nodes.Items {
		if _, ok := agents[n.Name]; !ok {
			missing = append(missing, n.Name)
		}
	}
	if len(missing) > 0 {
		slices.Sort(missing)
		fmt.Fprintf(log, "warning: no Ready syscage agent runs on %s: the profile is not written there, and pods that use it cannot start there\n", strings.Join(missing, ", "))
	}
}

// nodeCopies are what the nodes report of profile ns/name, by node: each in its
// SyscallNodeStatus of the namespace.
func (c *clients) nodeCopies(ctx context.Context, ns, name string) (map[string]kubeapi.NodeProfile, error) {
	l, err := c.dyn.Resource(nodeStatusGVR).Namespace(ns).List(ctx, metav1.ListOptions{})
	if err != nil {
		return nil, fmt.Errorf("reading the nodes' SyscallNodeStatuses in %s: %w", ns, notInstalled(err))
	}
	copies := map[string]kubeapi.NodeProfile{}
	for i := range l.Items {
		var st kubeapi.SyscallNodeStatus
		if err := fromUnstructured(&l.Items[i], &st); err != nil {
			return nil, err
		}
		// Named after its node, and written by that node's agent alone.
		if p, ok := st.Profiles[name]; ok && st.Spec.Node == st.Metadata.Name {
			copies[st.Spec.Node] = p
		}
	}
	return copies, nil
}

// profileProgress compares what each agent reports with the digest wanted: the
// nodes still to write it, and those that failed to, with why.
func profileProgress(copies map[string]kubeapi.NodeProfile, agents map[string]string, want string) (waiting, failed []string) {
	for _, node := range sortedKeys(agents) {
		n, ok := copies[node]
		switch {
		case ok && n.Digest == want:
		case ok && n.Error != "":
			failed = append(failed, fmt.Sprintf("node %s: %s", node, n.Error))
		default:
			waiting = append(waiting, node)
		}
	}
	return waiting, failed
}

// spoAPI is where the security-profiles-operator serves SeccompProfiles: its
// group/version and whether the objects are namespaced (releases before 1.0) or
// cluster-scoped (1.0 and later), both as discovery says.
type spoAPI struct {
	GroupVersion string
	Namespaced   bool
}

// spoVersions are the versions of the operator's API whose SeccompProfile
// syscage writes, in order of preference: v1 (1.0 and later), then v1beta1,
// which has the same spec. Any other version is tried after these, in the
// server's order of preference.
var spoVersions = []string{"v1", "v1beta1"}

// spoVersion returns where the security-profiles-operator serves
// SeccompProfiles, or a zero spoAPI when it does not. The scope is read from
// discovery, never assumed: the operator's 1.0 made the resource cluster-scoped.
func (c *clients) spoVersion() (spoAPI, error) {
	groups, err := c.discovery.ServerGroups()
	if err != nil {
		return spoAPI{}, fmt.Errorf("discovering the API groups: %w", err)
	}
	for _, g := range groups.Groups {
		if g.Name != kubeapi.SPOGroup {
			continue
		}
		var versions []string
		for _, v := range g.Versions {
			versions = append(versions, v.GroupVersion)
		}
		rank := func(gv string) int {
			_, v, _ := strings.Cut(gv, "/")
			if i := slices.Index(spoVersions, v); i >= 0 {
				return i
			}
			if gv == g.PreferredVersion.GroupVersion {
				return len(spoVersions)
			}
			return len(spoVersions) + 1
		}
		slices.SortStableFunc(versions, func(a, b string) int { return rank(a) - rank(b) })
		for _, gv := range versions {
			res, err := c.discovery.ServerResourcesForGroupVersion(gv)
			if err != nil {
				continue
			}
			for _, r := range res.APIResources {
				if r.Name == "seccompprofiles" {
					return spoAPI{GroupVersion: gv, Namespaced: r.Namespaced}, nil
				}
			}
		}
	}
	return spoAPI{}, nil
}

// spoNamespaceAnnotation, on a cluster-scoped SeccompProfile that apply wrote,
// names the namespace of the workload it was written for: apply refuses to
// replace a profile written for another namespace, or by someone else.
const spoNamespaceAnnotation = "syscage.io/namespace"

// coverageAnnotation carries, on a SeccompProfile, the coverage a
// SyscallProfile has in spec.coverage: the operator's schema has no place for it.
const coverageAnnotation = "syscage.io/coverage"

// spoName is the name of the SeccompProfile for profile name of namespace ns.
// Cluster-scoped objects share one name space across namespaces, so the
// namespace is part of the name unless the user chose it (--name).
func spoName(api spoAPI, ns, name string, chosen bool) string {
	if api.Namespaced || chosen {
		return name
	}
	return ns + "-" + name
}

// applySPO creates or updates a security-profiles-operator SeccompProfile and
// waits until the operator reports it installed. It returns the localhostProfile
// the operator reports (status.localhostProfile), or, from operators that report
// none, the path where they install it.
func (c *clients) applySPO(ctx context.Context, out io.Writer, p *specs.LinuxSeccomp, cov *profile.Coverage, name, ns string, api spoAPI, timeout time.Duration) (string, error) {
	objNS, what := "", "SeccompProfile "+name
	if api.Namespaced {
		objNS, what = ns, "SeccompProfile "+ns+"/"+name
	}
	s, err := profile.SPOFromOCI(p, name, objNS)
	if err != nil {
		return "", fmt.Errorf("the security-profiles-operator is installed, but the profile cannot be a SeccompProfile: %w (or use --no-spo to install it with syscage's agents)", err)
	}
	s.APIVersion = api.GroupVersion
	s.Metadata.Labels = map[string]string{managedByLabel: fieldManager}
	s.Metadata.Annotations = map[string]string{}
	if !api.Namespaced {
		s.Metadata.Annotations[spoNamespaceAnnotation] = ns
	}
	if cov != nil {
		b, err := json.Marshal(cov)
		if err != nil {
			return "", err
		}
		s.Metadata.Annotations[coverageAnnotation] = string(b)
	}
	data, err := profile.MarshalSPO(s)
	if err != nil {
		return "", err
	}
	u := &unstructured.Unstructured{}
	if err := u.UnmarshalJSON(data); err != nil {
		return "", err
	}
	gvr := schema.FromAPIVersionAndKind(api.GroupVersion, profile.SPOKind).GroupVersion().WithResource("seccompprofiles")
	var ri dynamic.ResourceInterface = c.dyn.Resource(gvr)
	if api.Namespaced {
		ri = c.dyn.Resource(gvr).Namespace(ns)
	}
	if !api.Namespaced {
		// One name for the whole cluster: never take over another's profile.
		have, err := ri.Get(ctx, name, metav1.GetOptions{})
		switch {
		case apierrors.IsNotFound(err):
		case err != nil:
			return "", fmt.Errorf("reading %s: %w", what, err)
		case have.GetLabels()[managedByLabel] != fieldManager || have.GetAnnotations()[spoNamespaceAnnotation] != ns:
			owner := "was not written by kubectl-syscage"
			if o := have.GetAnnotations()[spoNamespaceAnnotation]; o != "" && have.GetLabels()[managedByLabel] == fieldManager {
				owner = "was written for namespace " + o
			}
			return "", fmt.Errorf("%s exists and %s; SeccompProfiles are cluster-scoped, so apply will not replace it: choose another name with --name", what, owner)
		}
	}
	if _, err := c.applyObject(ctx, gvr, api.Namespaced, u); err != nil {
		return "", fmt.Errorf("writing %s (%s): %w", what, api.GroupVersion, err)
	}
	var localhost string
	err = c.poll(ctx, timeout, "the security-profiles-operator to install "+what, func(ctx context.Context) (pending, error) {
		u, err := ri.Get(ctx, name, metav1.GetOptions{})
		if err != nil {
			return "", fmt.Errorf("reading %s: %w", what, err)
		}
		state, _, _ := unstructured.NestedString(u.Object, "status", "status")
		switch state {
		case "Installed":
			localhost, _, _ = unstructured.NestedString(u.Object, "status", "localhostProfile")
			return "", nil
		case "Error":
			return "", errors.New("the security-profiles-operator could not install " + what + spoConditions(u))
		case "":
			state = "no status yet"
		}
		return "status " + state + spoConditions(u), nil
	})
	if err != nil {
		return "", err
	}
	if localhost == "" {
		localhost = profile.SPOLocalhost(s).LocalhostProfile
	} else if err := checkLocalhost(localhost); err != nil {
		return "", fmt.Errorf("%s: status.localhostProfile: %w", what, err)
	}
	fmt.Fprintf(out, "seccompprofile %s: installed by the security-profiles-operator as %s\n", strings.TrimPrefix(what, "SeccompProfile "), localhost)
	return localhost, nil
}

// checkLocalhost refuses a localhostProfile the kubelet would refuse or resolve
// outside its seccomp directory.
func checkLocalhost(p string) error {
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") {
		return fmt.Errorf("%q is not a clean path relative to the kubelet's seccomp directory", p)
	}
	return nil
}

// spoConditions are the messages of a SeccompProfile's conditions.
func spoConditions(u *unstructured.Unstructured) string {
	conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
	var msgs []string
	for _, c := range conds {
		m, _ := c.(map[string]any)
		if msg, _ := m["message"].(string); msg != "" {
			msgs = append(msgs, msg)
		} else if reason, _ := m["reason"].(string); reason != "" {
			msgs = append(msgs, reason)
		}
	}
	if len(msgs) == 0 {
		return ""
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}
