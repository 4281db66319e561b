package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"
)

// holdDefaultAdmin keeps 127.0.0.1:9090 busy for the test, as another
// program on the machine might; if something holds it already, so much the
// better.
func holdDefaultAdmin(t *testing.T) {
	t.Helper()
	if ln, err := net.Listen("tcp", coreAdminDefault); err == nil {
		t.Cleanup(func() { ln.Close() })
	}
}

// TestAdminFlagDemo: `fulcrum demo -admin ADDR` moves the demo's admin
// listener, so a busy 127.0.0.1:9090 no longer blocks the demo, and the demo
// prints the command it was started with.
func TestAdminFlagDemo(t *testing.T) {
	t.Parallel()
	holdDefaultAdmin(t)
	addr, admin := coreFreeAddr(t), coreFreeAddr(t)
	f := coreProc(t, "demo", "-listen", addr, "-admin", admin)
	f.Addr, f.Admin = addr, admin
	WaitFor(t, 15*time.Second, "the demo's instructions", func() bool {
		if !coreAlive(f) {
			t.Fatalf("demo exited: %v\n%s", f.exitErr, f.Logs.String())
		}
		return strings.Contains(f.Logs.String(), "Ctrl-C")
	})
	f.waitListening(t)
	out := f.Logs.String()
	for _, w := range []string{"started as: fulcrum demo -listen " + addr + " -admin " + admin, "curl http://" + admin + "/admin/backends"} {
		if !strings.Contains(out, w) {
			t.Errorf("demo output lacks %q:\n%s", w, out)
		}
	}
	if st := coreAdminBackends(t, f); len(st) != 3 {
		t.Errorf("/admin/backends on %s lists %d backends, want 3", admin, len(st))
	}
	f.Signal(os.Interrupt)
	if code := f.Wait(15 * time.Second); code != 0 {
		t.Fatalf("demo exit code after Ctrl-C: %d\n%s", code, f.Logs.String())
	}
}

// TestAdminFlagRun: -admin sets the admin listener without a file, and with
// -config it overrides admin_addr, on reload too.
func TestAdminFlagRun(t *testing.T) {
	t.Parallel()
	holdDefaultAdmin(t)
	b := StartBackend(t, "a", 0, nil)

	addr, admin := coreFreeAddr(t), coreFreeAddr(t)
	f := coreProc(t, "-listen", addr, "-admin", admin, "-backends", b.URL)
	f.Addr, f.Admin = addr, admin
	f.waitListening(t)
	if st := coreAdminBackends(t, f); len(st) != 1 || st[0].URL != b.URL {
		t.Fatalf("flags mode: /admin/backends on -admin %s = %+v", admin, st)
	}

	fileAdmin, flagAdmin := coreFreeAddr(t), coreFreeAddr(t)
	g := StartFulcrum(t, fmt.Sprintf(`{"admin_addr": %q, "backends": [%q]}`, fileAdmin, b.URL), "-admin", flagAdmin)
	g.Admin = flagAdmin
	g.waitListening(t)
	if coreListening(fileAdmin) {
		t.Fatalf("the file's admin_addr %s is listening although -admin %s overrides it", fileAdmin, flagAdmin)
	}
	// The file still names its own admin_addr; -admin overrides it on
	// reload as well, so the reload does not change admin_addr.
	if code, body := coreReload(t, g); code != http.StatusOK {
		t.Fatalf("reload with -admin: %d %q, want 200", code, body)
	}
}
