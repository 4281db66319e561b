package e2e

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

const unitPath = "../contrib/systemd/fulcrum.service"

// unitFile is a parsed systemd unit: section -> key -> values, in order (a
// key may be given more than once).
type unitFile map[string]map[string][]string

func parseUnit(t *testing.T, path string) unitFile {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	u := unitFile{}
	section := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		switch {
		case line == "" || strings.HasPrefix(line, "#") || strings.HasPrefix(line, ";"):
		case strings.HasPrefix(line, "[") && strings.HasSuffix(line, "]"):
			section = line[1 : len(line)-1]
			u[section] = map[string][]string{}
		default:
			k, v, ok := strings.Cut(line, "=")
			if !ok || section == "" || strings.HasSuffix(line, `\`) {
				t.Fatalf("%s:%d: not a key=value line of a section: %q", path, n, line)
			}
			u[section][k] = append(u[section][k], v)
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return u
}

// one returns the single value of key in [Service], failing when it is
// absent or given more than once.
func (u unitFile) one(t *testing.T, key string) string {
	t.Helper()
	vs := u["Service"][key]
	if len(vs) != 1 {
		t.Errorf("[Service] %s given %d times, want once", key, len(vs))
		return ""
	}
	return vs[0]
}

// TestSystemdUnit checks contrib/systemd/fulcrum.service: the directives
// the README promises, then that its commands work with the real binary
// (ExecStartPre validates, ExecStart serves, ExecReload's SIGHUP reloads,
// SIGTERM stops it cleanly), and, where systemd-analyze is installed, that
// systemd accepts the unit and rates its sandbox as OK.
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	u := parseUnit(t, unitPath)
	const bin, conf = "/usr/local/bin/fulcrum", "/etc/fulcrum/fulcrum.yaml"
	if got := u.one(t, "ExecStart"); got != bin+" -config "+conf {
		t.Errorf("ExecStart=%s", got)
	}
	if got := u.one(t, "ExecStartPre"); got != bin+" validate -config "+conf {
		t.Errorf("ExecStartPre=%s", got)
	}
	for k, want := range map[string]string{
		"ExecReload": "/bin/kill -HUP $MAINPID", "Restart": "on-failure", "LimitNOFILE": "1048576",
		"KillSignal": "SIGTERM", "AmbientCapabilities": "CAP_NET_BIND_SERVICE",
		"CapabilityBoundingSet": "CAP_NET_BIND_SERVICE", "User": "fulcrum",
		"NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes", "PrivateTmp": "yes",
		"PrivateDevices": "yes", "ProtectKernelTunables": "yes", "ProtectKernelModules": "yes",
		"ProtectControlGroups": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"RestrictNamespaces": "yes", "LockPersonality": "yes", "MemoryDenyWriteExecute": "yes",
	} {
		if got := u.one(t, k); got != want {
			t.Errorf("%s=%s, want %s", k, got, want)
		}
	}
	if f := u["Service"]["SystemCallFilter"]; len(f) == 0 || f[0] != "@system-service" {
		t.Errorf("SystemCallFilter=%q, want @system-service first", f)
	}
	if _, ok := u["Service"]["ReadWritePaths"]; ok {
		t.Error("ReadWritePaths is set, but fulcrum writes no file")
	}
	// The stop timeout must leave graceful shutdown its default 30 s.
	if d, err := time.ParseDuration(u.one(t, "TimeoutStopSec")); err != nil || d <= 30*time.Second {
		t.Errorf("TimeoutStopSec=%v (%v), want more than shutdown_timeout's 30s", d, err)
	}
	if u["Install"]["WantedBy"] == nil || u["Unit"]["Description"] == nil {
		t.Error("no [Install] WantedBy or [Unit] Description")
	}

	runUnitCommands(t)
	analyzeUnit(t)
}

// runUnitCommands runs the unit's commands, with the binary and config
// file swapped for the test's: validate, serve, reload on SIGHUP, stop on
// SIGTERM with status 0.
func runUnitCommands(t *testing.T) {
	be := StartBackend(t, "unit", 0, nil)
	if code, out, errOut := coreRun(t, 30*time.Second, "validate", "-config",
		coreWriteFile(t, "fulcrum.yaml", "backends: ["+be.URL+"]\n")); code != 0 {
		t.Fatalf("ExecStartPre: exit %d\n%s%s", code, out, errOut)
	}
	f := StartFulcrum(t, fmt.Sprintf(`{"backends": [%q]}`, be.URL)) // runs fulcrum -config FILE
	if code, body := Get(t, http.DefaultClient, f.URL("/")); code != 200 || body != "unit" {
		t.Fatalf("ExecStart: GET / = %d %q", code, body)
	}
	f.Signal(syscall.SIGHUP) // what ExecReload sends
	WaitFor(t, 10*time.Second, "the SIGHUP reload", func() bool {
		return strings.Contains(f.Logs.String(), `msg="configuration reloaded"`)
	})
	f.Signal(syscall.SIGTERM) // KillSignal
	if code := f.Wait(40 * time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM\n%s", code, f.Logs.String())
	}
}

var exposureRE = regexp.MustCompile(`Overall exposure level for \S+: (\d+\.\d+)`)

// analyzeUnit runs systemd-analyze verify and security on a copy of the
// unit whose commands name the test's binary (verify checks that they
// exist).
func analyzeUnit(t *testing.T) {
	sa, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Log("systemd-analyze is not installed (Debian package systemd): skipping verify and security")
		return
	}
	raw, err := os.ReadFile(unitPath)
	if err != nil {
		t.Fatal(err)
	}
	unit := filepath.Join(t.TempDir(), "fulcrum.service")
	if err := os.WriteFile(unit, []byte(strings.ReplaceAll(string(raw), "/usr/local/bin/fulcrum", binPath)), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, sa, "verify", unit).CombinedOutput()
	if err != nil || strings.Contains(string(out), "fulcrum.service") {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.CommandContext(ctx, sa, "security", "--offline=true", unit).CombinedOutput()
	if err != nil && !strings.Contains(string(out), "Overall exposure") {
		t.Logf("systemd-analyze security --offline is not supported here (%v): skipping\n%s", err, out)
		return
	}
	m := exposureRE.FindSubmatch(out)
	if m == nil {
		t.Fatalf("systemd-analyze security: no exposure level in\n%s", out)
	}
	if level, _ := strconv.ParseFloat(string(m[1]), 64); level > 2.0 {
		t.Errorf("systemd-analyze security rates the unit %.1f, want at most 2.0 (OK)\n%s", level, out)
	}
}
