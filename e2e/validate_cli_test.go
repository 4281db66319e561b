package e2e

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// TestValidateFlagProblemsNameTheFlag: a bad flag value is reported with the
// flag's name, by validate and at start-up, not as the file key it overrides.
func TestValidateFlagProblemsNameTheFlag(t *testing.T) {
	t.Parallel()
	path := coreWriteFile(t, "ok.json", fmt.Sprintf(`{"listen_addr": %q, "admin_addr": "", "backends": ["http://127.0.0.1:1"]}`, coreFreeAddr(t)))
	const want = `-health-check-interval: must be a duration like "30s" or "1m30s", got "30"`
	for _, args := range [][]string{
		{"validate", "-config", path, "-health-check-interval", "30"},
		{"-config", path, "-health-check-interval", "30"},
		{"-health-check-interval", "30", "-admin", "", "-listen", coreFreeAddr(t), "-backends", "http://127.0.0.1:1"},
	} {
		code, stdout, stderr := coreRun(t, 30*time.Second, args...)
		if code != 1 || !strings.Contains(stderr, want) || strings.Contains(stderr, "health_check_interval") {
			t.Errorf("fulcrum %q: exit %d, want 1 with %q and no file key\nstdout: %s\nstderr: %s", args, code, want, stdout, stderr)
		}
	}
	code, _, stderr := coreRun(t, 30*time.Second, "validate", "-config", path, "-strategy", "fastest", "-backends", "http://127.0.0.1:1,")
	for _, w := range []string{`-strategy: unknown strategy "fastest"`, "-backends[1]: must not be empty"} {
		if code != 1 || !strings.Contains(stderr, w) {
			t.Errorf("validate with bad -strategy and -backends: exit %d, output lacks %q:\n%s", code, w, stderr)
		}
	}
}

// TestUnexpectedArguments: arguments left after the flags are an error (exit
// 2) for validate, the main command and demo, before anything is bound.
func TestUnexpectedArguments(t *testing.T) {
	t.Parallel()
	path := coreWriteFile(t, "ok.json", fmt.Sprintf(`{"listen_addr": %q, "admin_addr": "", "backends": ["http://127.0.0.1:1"]}`, coreFreeAddr(t)))
	for _, args := range [][]string{
		{"validate", "-config", path, "extra"},
		{"validate", path, "other.json"},
		{"-config", path, "extra"},
		{"demo", "-listen", coreFreeAddr(t), "-admin", "", "extra"},
	} {
		code, stdout, stderr := coreRun(t, 15*time.Second, args...)
		if code != 2 || !strings.Contains(stderr, "unexpected argument") {
			t.Errorf("fulcrum %q: exit %d, want 2 with \"unexpected argument\"\nstdout: %s\nstderr: %s", args, code, stdout, stderr)
		}
	}
}

// TestValidateEmptyFile: an empty file (or, in YAML, one of only comments)
// says "empty configuration file", from validate and at start-up.
func TestValidateEmptyFile(t *testing.T) {
	t.Parallel()
	for name, content := range map[string]string{"empty.json": "", "blank.json": "\n  \n", "empty.yaml": "", "comments.yaml": "# TODO\n"} {
		path := coreWriteFile(t, name, content)
		for _, args := range [][]string{{"validate", "-config", path}, {"-config", path}} {
			code, stdout, stderr := coreRun(t, 30*time.Second, args...)
			if code != 1 || !strings.Contains(stderr, "config: empty configuration file") {
				t.Errorf("fulcrum %q (%q): exit %d, want 1 with \"empty configuration file\"\nstdout: %s\nstderr: %s", args, content, code, stdout, stderr)
			}
		}
	}
}

// TestValidateYAMLLines: YAML errors name the line where the problem is,
// syntax errors (which yaml.v3 places at the start of the enclosing block)
// as well as every validation problem.
func TestValidateYAMLLines(t *testing.T) {
	t.Parallel()
	head := fmt.Sprintf("# fulcrum.yaml\nlisten_addr: %q\nadmin_addr: \"\"\nstrategy: random\nbackends:\n  - http://127.0.0.1:1\n", coreFreeAddr(t))
	for _, tc := range []struct{ name, tail, want string }{
		{"syntax", " retries: 2\n", "config: line 7: did not find expected key"},
		{"tab", "\tretries: 2\n", "config: line 7: found a tab character that violates indentation"},
		{"weight", "  - {url: http://127.0.0.1:2, weight: 0}\n", "config: line 7: backends[1].weight: must be >= 1, got 0"},
		{"unknown key", "retires: 2\n", `config: line 7: retires: unknown key (did you mean "retries"?)`},
		{"hash_key", "hash_key: path\n", `config: line 7: hash_key: only applies to strategy "consistent_hash"`},
	} {
		path := coreWriteFile(t, tc.name+".yaml", head+tc.tail)
		for _, args := range [][]string{{"validate", "-config", path}, {"-config", path}} {
			code, stdout, stderr := coreRun(t, 30*time.Second, args...)
			if code != 1 || !strings.Contains(stderr, tc.want) {
				t.Errorf("%s: fulcrum %q: exit %d, want 1 with %q\nstdout: %s\nstderr: %s", tc.name, args, code, tc.want, stdout, stderr)
			}
		}
	}
}
