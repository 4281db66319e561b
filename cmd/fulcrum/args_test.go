package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestUnexpectedArgs: arguments left after the flags are an error (validate
// ignored them), reported before anything is loaded or bound. demo's case is
// in e2e, where a demo that ignored them can be stopped.
func TestUnexpectedArgs(t *testing.T) {
	path := filepath.Join(t.TempDir(), "ok.json")
	if err := os.WriteFile(path, []byte(`{"admin_addr": "", "backends": ["http://127.0.0.1:1"]}`), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"validate", "-config", path, "extra"}, `fulcrum validate: unexpected argument "extra"`},
		{[]string{"validate", path, "extra"}, `fulcrum validate: unexpected argument "extra"`},
		{[]string{"validate", path, "-strategy", "random"}, `fulcrum validate: unexpected argument "-strategy"`},
		{[]string{"-config", path, "extra"}, `fulcrum: unexpected argument "extra"`},
		{[]string{"frobnicate"}, `fulcrum: unknown command "frobnicate"`},
	} {
		var out, errb bytes.Buffer
		if code := run(tc.args, &out, &errb); code != 2 || !strings.Contains(errb.String(), tc.want) {
			t.Errorf("fulcrum %q: exit %d, stderr %q; want 2 and %q", tc.args, code, errb.String(), tc.want)
		}
	}
	var out, errb bytes.Buffer
	if code := run([]string{"validate", path}, &out, &errb); code != 0 {
		t.Errorf("fulcrum validate FILE: exit %d\n%s%s", code, out.String(), errb.String())
	}
}
