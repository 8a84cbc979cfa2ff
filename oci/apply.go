package oci

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/syscage/syscage/profile"
)

// ApplyProfile sets linux.seccomp in bundle/config.json to p, replacing the file
// atomically. Everything else in the file keeps its bytes: fields syscage does not
// know, their order, numbers, indentation. Only the seccomp value is rewritten
// (or inserted, indented like its neighbours).
func ApplyProfile(bundle string, p *specs.LinuxSeccomp) error {
	path := filepath.Join(bundle, "config.json")
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("reading bundle config: %w", err)
	}
	out, err := SpliceSeccomp(data, p)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return profile.WriteFile(path, out)
}

// SpliceSeccomp returns the OCI config data with linux.seccomp set to p.
func SpliceSeccomp(data []byte, p *specs.LinuxSeccomp) ([]byte, error) {
	var check specs.Spec
	if err := json.Unmarshal(data, &check); err != nil {
		return nil, fmt.Errorf("not an OCI runtime config: %w", err)
	}
	top, err := scanObject(data, 0)
	if err != nil {
		return nil, err
	}
	unit := indentUnit(data, top)
	linux, ok := top.member("linux")
	if !ok {
		wrapped := map[string]*specs.LinuxSeccomp{"seccomp": p}
		return top.insert(data, "linux", wrapped, unit)
	}
	if linux.valStart >= len(data) || data[linux.valStart] != '{' {
		return nil, errors.New("linux is not an object")
	}
	lobj, err := scanObject(data, linux.valStart)
	if err != nil {
		return nil, err
	}
	if sc, ok := lobj.member("seccomp"); ok {
		val, err := marshalAt(p, lineIndent(data, sc.keyStart), unit)
		if err != nil {
			return nil, err
		}
		return splice(data, sc.valStart, sc.valEnd, val), nil
	}
	return lobj.insert(data, "seccomp", p, unit)
}

// object is where a JSON object and its members lie in a document.
type object struct {
	open, close int // offsets of '{' and '}'
	members     []member
}

type member struct {
	key                        string
	keyStart, valStart, valEnd int
}

func (o object) member(key string) (member, bool) {
	for _, m := range o.members {
		if m.key == key {
			return m, true
		}
	}
	return member{}, false
}

// insert adds "key": v as the object's last member, laid out like its others.
func (o object) insert(data []byte, key string, v any, unit string) ([]byte, error) {
	var ind, sep string
	if n := len(o.members); n > 0 {
		first := o.members[0]
		ind = lineIndent(data, first.keyStart)
		sep = string(data[o.open+1 : first.keyStart]) // e.g. "\n\t\t"
	} else {
		ind = lineIndent(data, o.open) + unit
		sep = "\n" + ind
	}
	val, err := marshalAt(v, ind, unit)
	if err != nil {
		return nil, err
	}
	k, _ := json.Marshal(key)
	colon := ": "
	if len(o.members) > 0 {
		m := o.members[0]
		colon = string(data[m.keyStart+len(quote(m.key)) : m.valStart])
	}
	var ins []byte
	at := o.close
	if len(o.members) > 0 {
		last := o.members[len(o.members)-1]
		at = last.valEnd
		ins = append(ins, ',')
		ins = append(ins, sep...)
	} else {
		ins = append(ins, sep...)
	}
	ins = append(ins, k...)
	ins = append(ins, colon...)
	ins = append(ins, val...)
	if len(o.members) == 0 {
		ins = append(ins, '\n')
		ins = append(ins, lineIndent(data, o.open)...)
	}
	return splice(data, at, at, ins), nil
}

func quote(s string) []byte { b, _ := json.Marshal(s); return b }

// scanObject finds the members of the object that starts at data[start].
func scanObject(data []byte, start int) (object, error) {
	dec := json.NewDecoder(bytes.NewReader(data[start:]))
	dec.UseNumber()
	if tok, err := dec.Token(); err != nil || tok != json.Delim('{') {
		return object{}, fmt.Errorf("expected an object at byte %d", start)
	}
	o := object{open: start}
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return object{}, err
		}
		key, _ := tok.(string)
		end := start + int(dec.InputOffset())
		// The key may hold escaped quotes: find the one that opens it.
		keyStart := openingQuote(data, end-1)
		valStart := end
		for valStart < len(data) && (isSpace(data[valStart]) || data[valStart] == ':') {
			valStart++
		}
		var raw json.RawMessage
		if err := dec.Decode(&raw); err != nil {
			return object{}, err
		}
		o.members = append(o.members, member{key: key, keyStart: keyStart, valStart: valStart, valEnd: start + int(dec.InputOffset())})
	}
	if _, err := dec.Token(); err != nil {
		return object{}, err
	}
	o.close = start + int(dec.InputOffset()) - 1
	return o, nil
}

// openingQuote returns the offset of the quote that opens the string whose closing
// quote is at end.
func openingQuote(data []byte, end int) int {
	for i := end - 1; i >= 0; i-- {
		if data[i] != '"' {
			continue
		}
		bs := 0
		for j := i - 1; j >= 0 && data[j] == '\\'; j-- {
			bs++
		}
		if bs%2 == 0 {
			return i
		}
	}
	return 0
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// lineIndent is the whitespace that begins the line holding offset at.
func lineIndent(data []byte, at int) string {
	ls := bytes.LastIndexByte(data[:at], '\n') + 1
	i := ls
	for i < at && (data[i] == ' ' || data[i] == '\t') {
		i++
	}
	return string(data[ls:i])
}

// indentUnit guesses one level of the document's indentation from its first
// member: a tab, some spaces, or none for compact JSON.
func indentUnit(data []byte, top object) string {
	if len(top.members) == 0 {
		return "\t"
	}
	ind := lineIndent(data, top.members[0].keyStart)
	if !bytes.Contains(data[top.open:top.members[0].keyStart], []byte("\n")) {
		return ""
	}
	return ind
}

// marshalAt encodes v indented for a value that starts at a line indented ind.
func marshalAt(v any, ind, unit string) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if unit != "" {
		enc.SetIndent(ind, unit)
	}
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

func splice(data []byte, from, to int, ins []byte) []byte {
	out := make([]byte, 0, len(data)-(to-from)+len(ins))
	out = append(out, data[:from]...)
	out = append(out, ins...)
	return append(out, data[to:]...)
}

// SecurityOpt is the podman/docker flag that enforces the profile at path.
func SecurityOpt(path string) (string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", err
	}
	// Neither podman nor docker splits the value; a path with a comma or an equals
	// sign is taken as it is.
	return "--security-opt seccomp=" + shellQuote(abs), nil
}

func shellQuote(s string) string {
	if s != "" && strings.IndexFunc(s, func(r rune) bool {
		return !(r == '/' || r == '.' || r == '-' || r == '_' || r == '+' || r == ':' || r == ',' || r == '=' ||
			(r >= 'a' && r <= 'z') || (r >= 'A' && r <= 'Z') || (r >= '0' && r <= '9'))
	}) < 0 {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
