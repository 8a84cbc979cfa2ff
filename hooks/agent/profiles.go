package agent

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"

	"github.com/syscage/syscage/hooks"
	"github.com/syscage/syscage/hooks/kubeapi"
	"github.com/syscage/syscage/profile"
)

// The SyscallProfiles are written to SeccompDir/syscage/NAMESPACE/NAME.json
// through an os.Root on SeccompDir, so neither a name nor a symbolic link placed
// on the node can lead a write elsewhere. Profiles carry no finalizers: a node
// that is gone (an autoscaled cluster's) must never keep a deletion waiting. An
// agent removes a deleted profile's file when it hears of the deletion, and one
// that was away sweeps, when it lists the profiles again, every file whose
// profile no longer exists. Finalizers that agents of earlier versions put on
// profiles are taken off.

// sweepProfiles removes the files of profiles not in the list: deleted while the
// agent was away, or, at its exit, deleted by an uninstall that then took the
// agent down.
func (a *Agent) sweepProfiles(all []kubeapi.SyscallProfile) {
	keep := map[string]bool{}
	for _, o := range all {
		keep[kubeapi.LocalhostProfile(o.Metadata.Namespace, o.Metadata.Name)] = true
	}
	defer a.unreport(keep)
	root, err := os.OpenRoot(a.opts.SeccompDir)
	if err != nil {
		a.log.Error("opening the seccomp directory", "dir", a.opts.SeccompDir, "err", err)
		return
	}
	defer root.Close()
	fs.WalkDir(root.FS(), kubeapi.ProfileDir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() && strings.HasSuffix(p, ".json") && !keep[p] {
			a.log.Info("removing the file of a deleted profile", "file", p)
			root.Remove(p)
		}
		return nil
	})
	a.pruneDirs(root)
}

// finalSweep lists the profiles once more as the agent stops, and removes the
// files of those deleted since: an uninstall deletes every profile, then the
// agents, which may stop before they hear of the last deletions.
func (a *Agent) finalSweep() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	all, err := list[kubeapi.SyscallProfile](ctx, a.api, profilesGVR)
	if err != nil {
		if apierrors.IsNotFound(err) { // the API itself is gone: so is every profile
			a.sweepProfiles(nil)
			return
		}
		a.log.Warn("listing the profiles as the agent stops: files of profiles deleted since stay until the next agent starts", "err", err)
		return
	}
	a.sweepProfiles(all)
}

func (a *Agent) profileChanged(obj any, deleted bool) {
	o, ok := decode[kubeapi.SyscallProfile](obj)
	if !ok {
		return
	}
	if deleted {
		if err := a.removeProfile(o); err != nil {
			a.log.Error("removing the file of a deleted profile", "profile", o.Metadata.Namespace+"/"+o.Metadata.Name, "err", err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), apiTimeout)
		defer cancel()
		a.report(ctx, o.Metadata.Namespace, o.Metadata.Name, nil)
		return
	}
	a.syncProfile(o)
}

// syncProfile makes the node's file match a profile, or removes it when the
// profile is being deleted.
func (a *Agent) syncProfile(o kubeapi.SyscallProfile) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	// The finalizer an agent of an earlier version may have left.
	fin := kubeapi.NodeFinalizer(a.opts.Node)
	if slices.Contains(o.Metadata.Finalizers, fin) {
		if err := a.setFinalizer(ctx, o, fin, false); err != nil {
			a.log.Error("taking an earlier agent's finalizer off a profile", "profile", o.Metadata.Namespace+"/"+o.Metadata.Name, "err", err)
		}
	}
	if o.Metadata.DeletionTimestamp != nil {
		if err := a.removeProfile(o); err != nil {
			a.log.Error("removing a profile", "profile", o.Metadata.Namespace+"/"+o.Metadata.Name, "err", err)
		}
		a.report(ctx, o.Metadata.Namespace, o.Metadata.Name, nil)
		return
	}
	name := kubeapi.LocalhostProfile(o.Metadata.Namespace, o.Metadata.Name)
	st := kubeapi.NodeProfile{}
	wrote := false
	data, err := profileBytes(o)
	if err == nil {
		st.Digest = kubeapi.Digest(data)
		current := a.fileIs(name, data)
		if current && a.isReported(o.Metadata.Namespace, o.Metadata.Name, &st) {
			return // nothing new
		}
		if !current {
			err = a.writeProfile(name, data)
			wrote = err == nil
		}
	}
	if err != nil {
		st = kubeapi.NodeProfile{Error: err.Error()}
		a.log.Error("writing a profile", "profile", o.Metadata.Namespace+"/"+o.Metadata.Name, "err", err)
	} else if wrote {
		a.log.Info("profile written", "profile", o.Metadata.Namespace+"/"+o.Metadata.Name, "file", name, "digest", st.Digest)
	}
	a.report(ctx, o.Metadata.Namespace, o.Metadata.Name, &st)
}

// profileBytes are the bytes written for a profile: profile.Marshal of a valid
// spec.profile, byte-stable, so that the digest says whether a node is current.
func profileBytes(o kubeapi.SyscallProfile) ([]byte, error) {
	if o.Spec.Profile == nil {
		return nil, errors.New("spec.profile is empty")
	}
	var msgs []string
	for _, f := range profile.Validate(o.Spec.Profile) {
		msgs = append(msgs, f.String())
	}
	if len(msgs) > 0 {
		return nil, fmt.Errorf("spec.profile is not valid: %s", strings.Join(msgs, "; "))
	}
	return profile.Marshal(o.Spec.Profile)
}

func (a *Agent) fileIs(name string, data []byte) bool {
	root, err := os.OpenRoot(a.opts.SeccompDir)
	if err != nil {
		return false
	}
	defer root.Close()
	got, err := root.ReadFile(name)
	return err == nil && bytes.Equal(got, data)
}

func (a *Agent) writeProfile(name string, data []byte) error {
	root, err := os.OpenRoot(a.opts.SeccompDir)
	if err != nil {
		return fmt.Errorf("the kubelet's seccomp directory: %w", err)
	}
	defer root.Close()
	if err := root.MkdirAll(path.Dir(name), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", path.Join(a.opts.SeccompDir, path.Dir(name)), err)
	}
	return hooks.WriteIn(root, name, data)
}

func (a *Agent) removeProfile(o kubeapi.SyscallProfile) error {
	root, err := os.OpenRoot(a.opts.SeccompDir)
	if err != nil {
		return err
	}
	defer root.Close()
	name := kubeapi.LocalhostProfile(o.Metadata.Namespace, o.Metadata.Name)
	if err := root.Remove(name); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	a.pruneDirs(root)
	return nil
}

// pruneDirs removes the agent's empty directories, its own included: once every
// profile is gone, nothing of syscage is left in the kubelet's directory.
func (a *Agent) pruneDirs(root *os.Root) {
	entries, _ := fs.ReadDir(root.FS(), kubeapi.ProfileDir)
	for _, e := range entries {
		if e.IsDir() {
			root.Remove(path.Join(kubeapi.ProfileDir, e.Name())) // fails unless empty
		}
	}
	root.Remove(kubeapi.ProfileDir)
}

// setFinalizer adds or removes a node's finalizer, with the object's
// resourceVersion so that agents on other nodes doing the same never lose each
// other's; a conflict re-reads and tries again.
func (a *Agent) setFinalizer(ctx context.Context, o kubeapi.SyscallProfile, fin string, want bool) error {
	for attempt := 0; ; attempt++ {
		has := slices.Contains(o.Metadata.Finalizers, fin)
		if has == want {
			return nil
		}
		fins := slices.DeleteFunc(slices.Clone(o.Metadata.Finalizers), func(f string) bool { return f == fin })
		if want {
			fins = append(fins, fin)
		}
		body, _ := json.Marshal(map[string]any{"metadata": map[string]any{"finalizers": fins, "resourceVersion": o.Metadata.ResourceVersion}})
		err := a.api.mergePatch(ctx, profilesGVR, o.Metadata.Namespace, o.Metadata.Name, body)
		switch {
		case err == nil:
			return nil
		case apierrors.IsNotFound(err):
			return nil
		case apierrors.IsConflict(err) && attempt < 10:
			if err := a.api.get(ctx, profilesGVR, o.Metadata.Namespace, o.Metadata.Name, &o); err != nil {
				if apierrors.IsNotFound(err) {
					return nil
				}
				return err
			}
		default:
			return fmt.Errorf("updating the finalizers of %s/%s: %w", o.Metadata.Namespace, o.Metadata.Name, err)
		}
	}
}
