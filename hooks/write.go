package hooks

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
)

// WriteIn replaces name below root atomically. os.Root refuses any path, symbolic
// link included, that leads out of the directory.
func WriteIn(root *os.Root, name string, data []byte) error {
	if fi, err := root.Lstat(name); err == nil && !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file, refusing to replace it", filepath.Join(root.Name(), name))
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	tmp := filepath.Join(filepath.Dir(name), "."+filepath.Base(name)+".tmp-"+hex.EncodeToString(rnd[:]))
	f, err := root.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", filepath.Join(root.Name(), name), err)
	}
	_, err = f.Write(data)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = root.Rename(tmp, name)
	}
	if err != nil {
		root.Remove(tmp)
		return fmt.Errorf("writing %s: %w", filepath.Join(root.Name(), name), err)
	}
	// The rename lasts once the directory is on disk too.
	if dir, err := root.Open(filepath.Dir(name)); err == nil {
		dir.Sync()
		dir.Close()
	}
	return nil
}
