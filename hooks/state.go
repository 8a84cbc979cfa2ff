package hooks

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"time"
)

// StateDir is where, in its run directory, the host's recorder keeps one file per
// container it tracks (containers/ID.json): what a recorder that takes over from
// one that died needs to finish the recording, and then how the recording ended,
// until the container's poststop hook asks (package recorder writes them).
const StateDir = "containers"

// StatePath is a container's file. Runtime IDs are names already (hex, or
// letters, digits and -_.); any other is hashed.
func StatePath(runDir, id string) string {
	name := id
	if !validName(id) {
		sum := sha256.Sum256([]byte(id))
		name = "sha256-" + hex.EncodeToString(sum[:])
	}
	return filepath.Join(runDir, StateDir, name+".json")
}

// hasState reports whether a recorder tracked the container (and its poststop
// hook has not yet asked how that ended).
func hasState(runDir, id string) bool {
	_, err := os.Lstat(StatePath(runDir, id))
	return err == nil
}

// ErrorSuffix names the note written beside where a profile would have gone when
// it could not be written, saying why; the next profile written removes it.
const ErrorSuffix = ".error"

type errorReport struct {
	Container string    `json:"container"`
	Profile   string    `json:"profile"`
	Error     string    `json:"error"`
	Time      time.Time `json:"time"`
}

// writeErrorFile writes NAME.json.error beside t's profile.
func writeErrorFile(t *Target, container string, cause error) error {
	if err := os.MkdirAll(t.Dir, 0o755); err != nil {
		return fmt.Errorf("writing %s%s: %w", t.Path(), ErrorSuffix, err)
	}
	root, err := os.OpenRoot(t.Dir)
	if err != nil {
		return fmt.Errorf("writing %s%s: %w", t.Path(), ErrorSuffix, err)
	}
	defer root.Close()
	data, err := json.MarshalIndent(errorReport{Container: container, Profile: t.Path(), Error: cause.Error(), Time: time.Now().UTC()}, "", "  ")
	if err != nil {
		return err
	}
	return WriteIn(root, t.File+ErrorSuffix, append(data, '\n'))
}

// NotWritten is the error a poststop hook returns for a profile that was not
// written, and that the .error note says too.
func NotWritten(t *Target, container string, cause error) error {
	if werr := writeErrorFile(t, container, cause); werr != nil {
		return fmt.Errorf("the profile of container %s was not written to %s: %w (and the note of why could not be written either: %w)", container, t.Path(), cause, werr)
	}
	return fmt.Errorf("the profile of container %s was not written to %s: %w (see %s%s)", container, t.Path(), cause, t.Path(), ErrorSuffix)
}
