package oci

import (
	"strings"
	"testing"
)

func TestParseState(t *testing.T) {
	tests := []struct {
		name, in, wantErr string
	}{
		{"valid", `{"ociVersion":"1.0.2","id":"c1","status":"created","pid":42,"bundle":"/b","annotations":{"k":"v"}}`, ""},
		{"not json", `hello`, "not OCI state JSON (is syscage running as an OCI hook?)"},
		{"no id", `{"pid":1}`, "container state has no id"},
		{"negative pid", `{"id":"c","pid":-1}`, "invalid pid -1"},
		{"relative bundle", `{"id":"c","pid":1,"bundle":"b"}`, `bundle "b" is not an absolute path`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, err := ParseState([]byte(tt.in))
			if tt.wantErr == "" {
				if err != nil || st.ID != "c1" || st.Pid != 42 || st.Annotations["k"] != "v" {
					t.Fatalf("got %+v, %v", st, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("got %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestReadStateBounded(t *testing.T) {
	_, err := ReadState(strings.NewReader(`{"id":"` + strings.Repeat("x", maxState) + `"}`))
	if err == nil || !strings.Contains(err.Error(), "larger than") {
		t.Fatalf("got %v", err)
	}
}

func FuzzParseState(f *testing.F) {
	f.Add([]byte(`{"ociVersion":"1.0.2","id":"c1","status":"created","pid":42,"bundle":"/b"}`))
	f.Add([]byte(`{"id":"c","pid":1,"annotations":{"io.syscage.record":"web"}}`))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		st, err := ParseState(data)
		if err == nil && (st.ID == "" || st.Pid < 0) {
			t.Fatalf("accepted invalid state %+v", st)
		}
	})
}
