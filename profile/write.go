package profile

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// CheckWritable fails early, before a long recording, when path could not be
// written: its directory is missing or not writable, or path is a directory.
func CheckWritable(path string) error {
	dir := filepath.Dir(path)
	st, err := os.Stat(dir)
	if errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("%s: directory %s does not exist: create it first", path, dir)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	if !st.IsDir() {
		return fmt.Errorf("%s: %s is not a directory", path, dir)
	}
	if st, err := os.Stat(path); err == nil {
		if st.IsDir() {
			return fmt.Errorf("%s is a directory: name a file", path)
		}
		if !st.Mode().IsRegular() {
			// The atomic rename would replace the device, pipe or socket itself.
			return fmt.Errorf("%s is not a regular file: name a file (profiles are written by replacing it)", path)
		}
	}
	f, err := os.CreateTemp(dir, ".syscage-check-*")
	if err != nil {
		return fmt.Errorf("%s: directory %s is not writable: %w", path, dir, err)
	}
	f.Close()
	os.Remove(f.Name())
	return nil
}

// WriteFile replaces path with data atomically: readers see the old file or the
// new one, never a half-written one, and a crash leaves at most a stray temporary
// file beside it. The new file is 0644.
func WriteFile(path string, data []byte) (err error) {
	if st, err := os.Lstat(path); err == nil && !st.Mode().IsRegular() {
		if st.Mode()&os.ModeSymlink != 0 {
			return fmt.Errorf("writing %s: it is a symbolic link, which would be replaced, not followed: name its target", path)
		}
		return fmt.Errorf("writing %s: not a regular file, refusing to replace it", path)
	}
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()
	if _, err := f.Write(data); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Chmod(0o644); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	// Make the rename itself durable.
	if d, err := os.Open(dir); err == nil {
		d.Sync()
		d.Close()
	}
	return nil
}
