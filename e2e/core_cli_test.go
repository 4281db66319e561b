package e2e

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"
)

// coreFlatForm is the original design's file, which must load unchanged.
const coreFlatForm = `{"listen_addr": ":8080", "health_check_interval": "30s", "max_fail_count": 3, "strategy": "weighted_round_robin", "backends": [{"url": "http://backend1:8081", "weight": 3}, {"url": "http://backend2:8082", "weight": 2}]}`

// TestCoreFlatFormLoads: the flat form validates and runs unchanged (with
// -listen overriding its ":8080", and an admin_addr added by the harness).
func TestCoreFlatFormLoads(t *testing.T) {
	t.Parallel()
	path := coreWriteFile(t, "flat.json", coreFlatForm)
	code, stdout, stderr := coreRun(t, 30*time.Second, "validate", "-config", path)
	if code != 0 {
		t.Fatalf("validate flat form: exit %d\nstdout: %s\nstderr: %s", code, stdout, stderr)
	}
	for _, want := range []string{"is valid", "2 backends", "weighted_round_robin", ":8080"} {
		if !strings.Contains(stdout, want) {
			t.Errorf("validate output %q lacks %q", stdout, want)
		}
	}

	addr := coreFreeAddr(t)
	f := StartFulcrum(t, coreFlatForm, "-listen", addr)
	f.Addr = addr
	f.waitListening(t)
	st := coreAdminBackends(t, f)
	if len(st) != 2 || st[0].URL != "http://backend1:8081" || st[0].Weight != 3 ||
		st[1].URL != "http://backend2:8082" || st[1].Weight != 2 {
		t.Fatalf("/admin/backends = %+v, want backend1 weight 3, backend2 weight 2", st)
	}
	coreNoPanic(t, f.Logs.String())
}

// TestCoreValidationReportsEverything: one file with every kind of mistake
// yields one located line per problem, from `validate` (exit 1) and from a
// normal start (exit 1, nothing left listening, no panic).
func TestCoreValidationReportsEverything(t *testing.T) {
	t.Parallel()
	listen := coreFreeAddr(t)
	admin := coreFreeAddr(t)
	bad := fmt.Sprintf(`{"listen_addr": %q, "admin_addr": %q, "strategy": "fastest",
 "health_check_interval": "10 parsecs", "connect_timeout": "5", "bogus_key": 1,
 "trusted_proxies": ["10.0.0.0/33", "not-a-cidr"],
 "backends": [
   {"url": "http://a.example:1", "weight": 0},
   {"url": "ftp://b.example:2"},
   {"url": "http://a.example:1"},
   {"url": "::not a url"},
   {"url": "http://c.example:3", "wieght": 2},
   {"url": "http://d.example:4", "weight": -3}
 ]}`, listen, admin)
	path := coreWriteFile(t, "bad.json", bad)
	want := []string{
		"backends[0].weight",
		"backends[1].url: unsupported scheme \"ftp\"",
		"backends[2].url: duplicate of backends[0]",
		"backends[3].url",
		"backends[4].wieght: unknown key",
		"backends[5].weight",
		"strategy: unknown strategy \"fastest\"",
		"health_check_interval",
		"connect_timeout",
		"trusted_proxies[0]",
		"trusted_proxies[1]",
		"bogus_key: unknown key",
	}
	check := func(what, out string) {
		t.Helper()
		coreNoPanic(t, out)
		for _, w := range want {
			if !strings.Contains(out, w) {
				t.Errorf("%s: output lacks %q:\n%s", what, w, out)
			}
		}
	}

	code, stdout, stderr := coreRun(t, 30*time.Second, "validate", "-config", path)
	if code != 1 {
		t.Fatalf("validate bad file: exit %d, want 1\n%s%s", code, stdout, stderr)
	}
	check("validate", stderr)

	start := time.Now()
	code, stdout, stderr = coreRun(t, 30*time.Second, "-config", path)
	if code == 0 {
		t.Fatalf("start with bad file: exit 0\n%s%s", stdout, stderr)
	}
	check("start", stdout+stderr)
	if coreListening(listen) || coreListening(admin) {
		t.Fatal("a listener is open after a failed start")
	}
	t.Logf("failed start took %v", time.Since(start))
}

// TestCoreBadFiles: unreadable, unparsable, empty and wrongly typed files
// give a clear message and a non-zero exit, never a panic; a valid file
// validates with exit 0.
func TestCoreBadFiles(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, file, content, want string
	}{
		{"missing", "", "", "no such file"},
		{"syntax", "broken.json", `{"backends": [`, "line"},
		{"empty", "empty.json", ``, "config"},
		{"top-level list", "list.json", `["http://127.0.0.1:1"]`, "object"},
		{"no backends", "nob.json", `{"strategy": "round_robin"}`, "backends"},
		{"wrong type", "type.json", `{"backends": "http://127.0.0.1:1", "max_fail_count": "3"}`, "max_fail_count"},
		{"bad extension", "conf.txt", `{}`, "extension"},
		{"yaml mistake", "bad.yaml", "backends:\n  - url: http://127.0.0.1:1\n    weight: 0\n", "backends[0].weight"},
	}
	for _, tc := range cases {
		path := "/nonexistent/dir/fulcrum.json"
		if tc.file != "" {
			path = coreWriteFile(t, tc.file, tc.content)
		}
		for _, args := range [][]string{{"validate", "-config", path}, {"-config", path}} {
			code, stdout, stderr := coreRun(t, 30*time.Second, args...)
			out := stdout + stderr
			if code != 1 {
				t.Errorf("%s: fulcrum %v: exit %d, want 1\n%s", tc.name, args, code, out)
			}
			if !strings.Contains(out, tc.want) {
				t.Errorf("%s: fulcrum %v: output lacks %q:\n%s", tc.name, args, tc.want, out)
			}
			coreNoPanic(t, out)
		}
	}

	good := coreWriteFile(t, "good.yaml", "listen_addr: 127.0.0.1:0\nstrategy: random\nbackends:\n  - http://127.0.0.1:1\n  - url: http://127.0.0.1:2\n    weight: 4\n")
	code, stdout, stderr := coreRun(t, 30*time.Second, "validate", "-config", good)
	if code != 0 || !strings.Contains(stdout, "valid") {
		t.Fatalf("validate good file: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestCoreStartFailureLeavesNothing: a valid file that cannot start (admin
// port taken) exits non-zero without leaving the traffic port listening.
func TestCoreStartFailureLeavesNothing(t *testing.T) {
	t.Parallel()
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	listen := coreFreeAddr(t)
	path := coreWriteFile(t, "c.json", fmt.Sprintf(`{"listen_addr": %q, "admin_addr": %q, "backends": ["http://127.0.0.1:1"]}`,
		listen, busy.Addr().String()))
	code, stdout, stderr := coreRun(t, 30*time.Second, "-config", path)
	out := stdout + stderr
	if code == 0 {
		t.Fatalf("exit 0 with a busy admin port\n%s", out)
	}
	if !strings.Contains(out, "admin_addr") {
		t.Errorf("message does not name admin_addr:\n%s", out)
	}
	coreNoPanic(t, out)
	if coreListening(listen) {
		t.Fatal("traffic port still listening after a failed start")
	}

	// And the other way round: traffic port busy.
	path = coreWriteFile(t, "d.json", fmt.Sprintf(`{"listen_addr": %q, "admin_addr": %q, "backends": ["http://127.0.0.1:1"]}`,
		busy.Addr().String(), coreFreeAddr(t)))
	code, stdout, stderr = coreRun(t, 30*time.Second, "-config", path)
	if code == 0 || !strings.Contains(stdout+stderr, "listen_addr") {
		t.Fatalf("busy listen port: exit %d\n%s%s", code, stdout, stderr)
	}
}

// TestCoreCLIVersionHelp: version, help, -h, unknown commands.
func TestCoreCLIVersionHelp(t *testing.T) {
	t.Parallel()
	code, stdout, _ := coreRun(t, 30*time.Second, "version")
	if code != 0 || !strings.HasPrefix(stdout, "fulcrum ") {
		t.Errorf("version: exit %d, stdout %q", code, stdout)
	}
	for _, arg := range []string{"help", "-h", "--help"} {
		code, stdout, stderr := coreRun(t, 30*time.Second, arg)
		if code != 0 {
			t.Errorf("%s: exit %d", arg, code)
		}
		for _, w := range []string{"Usage", "-config", "-listen", "-strategy", "-health-check-interval", "-max-fail-count", "-backends", "validate", "demo"} {
			if !strings.Contains(stdout+stderr, w) {
				t.Errorf("%s: output lacks %q:\n%s", arg, w, stdout+stderr)
			}
		}
	}
	code, _, stderr := coreRun(t, 30*time.Second, "frobnicate")
	if code == 0 || !strings.Contains(stderr, "frobnicate") {
		t.Errorf("unknown command: exit %d, stderr %q", code, stderr)
	}
	code, _, _ = coreRun(t, 30*time.Second, "-no-such-flag")
	if code == 0 {
		t.Errorf("unknown flag: exit 0")
	}
	code, _, stderr = coreRun(t, 30*time.Second, "validate")
	if code == 0 || !strings.Contains(stderr, "-config") {
		t.Errorf("validate without -config: exit %d, stderr %q", code, stderr)
	}
	// A bad flag value is a validation error like a bad file value.
	code, stdout, stderr = coreRun(t, 30*time.Second, "-strategy", "fastest", "-backends", "http://127.0.0.1:1", "-listen", coreFreeAddr(t))
	if code != 1 || !strings.Contains(stdout+stderr, "strategy") {
		t.Errorf("-strategy fastest: exit %d\n%s%s", code, stdout, stderr)
	}
	coreNoPanic(t, stdout+stderr)
}

// TestCoreFlagsOverrideFile: -strategy, -health-check-interval,
// -max-fail-count, -listen and -backends given with -config override the file.
func TestCoreFlagsOverrideFile(t *testing.T) {
	t.Parallel()
	bs := coreStartBackends(t, "a", "b", "c")
	fileListen := coreFreeAddr(t)
	cfg := fmt.Sprintf(`{"listen_addr": %q, "strategy": "round_robin", "health_check_interval": "30s", "max_fail_count": 5, "backends": %s}`,
		fileListen, coreBackendList(bs, []int{5, 1, 1}))
	addr := coreFreeAddr(t)
	f := StartFulcrum(t, cfg, "-listen", addr, "-strategy", "weighted_round_robin",
		"-health-check-interval", "200ms", "-max-fail-count", "1")
	f.Addr = addr
	f.waitListening(t)
	if coreListening(fileListen) {
		t.Fatal("the file's listen_addr is listening although -listen overrides it")
	}
	c := coreClient(t)
	got := strings.Join(coreSeq(t, c, f.URL("/"), 14), " ")
	if want := "a a b a c a a a a b a c a a"; got != want {
		t.Fatalf("-strategy weighted_round_robin over weights 5,1,1: got %q, want %q", got, want)
	}
	// 200ms / 1 failure: c goes down within a few seconds (the file's 30s / 5 could not).
	bs[2].Close()
	WaitFor(t, 10*time.Second, "c marked down", func() bool {
		return !coreByURL(coreAdminBackends(t, f))[bs[2].URL].Up
	})

	// -backends replaces the file's list.
	x := StartBackend(t, "x", 0, nil)
	y := StartBackend(t, "y", 0, nil)
	addr2 := coreFreeAddr(t)
	f2 := StartFulcrum(t, fmt.Sprintf(`{"listen_addr": %q, "strategy": "round_robin", "backends": ["http://127.0.0.1:1"]}`, coreFreeAddr(t)),
		"-listen", addr2, "-backends", x.URL+","+y.URL)
	f2.Addr = addr2
	f2.waitListening(t)
	cnt := coreCount(coreSeq(t, c, f2.URL("/"), 6))
	if cnt["x"] != 3 || cnt["y"] != 3 {
		t.Fatalf("-backends x,y: distribution %v, want 3/3", cnt)
	}
}

// coreAdminDefault is the admin address used when there is no config file.
const coreAdminDefault = "127.0.0.1:9090"

// coreNeedDefaultAdmin skips the test if 127.0.0.1:9090 is taken.
func coreNeedDefaultAdmin(t *testing.T) {
	t.Helper()
	ln, err := net.Listen("tcp", coreAdminDefault)
	if err != nil {
		t.Skipf("%s is busy (%v); flag-only and demo runs always use it", coreAdminDefault, err)
	}
	ln.Close()
}

// coreWaitStarted waits until a flag-only or demo process has logged want
// (printed once both listeners are bound). It skips the test if the process
// lost 127.0.0.1:9090 to someone else between coreNeedDefaultAdmin and its
// start.
func coreWaitStarted(t *testing.T, f *Fulcrum, want string) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !strings.Contains(f.Logs.String(), want) {
		if !coreAlive(f) {
			if strings.Contains(f.Logs.String(), "admin_addr") && strings.Contains(f.Logs.String(), "in use") {
				t.Skipf("%s was taken concurrently:\n%s", coreAdminDefault, f.Logs.String())
			}
			t.Fatalf("fulcrum exited early: %v\n%s", f.exitErr, f.Logs.String())
		}
		if time.Now().After(deadline) {
			t.Fatalf("no %q after 15s:\n%s", want, f.Logs.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	f.waitListening(t)
}

// TestCoreFlagsWithoutConfig: without -config, -listen, -strategy,
// -health-check-interval, -max-fail-count and -backends configure a running
// balancer. Not parallel: it needs the default admin port 127.0.0.1:9090.
func TestCoreFlagsWithoutConfig(t *testing.T) {
	coreNeedDefaultAdmin(t)
	bs := coreStartBackends(t, "a", "b", "c")
	addr := coreFreeAddr(t)
	f := coreProc(t, "-listen", addr, "-strategy", "round_robin", "-health-check-interval", "200ms",
		"-max-fail-count", "1", "-backends", bs[0].URL+","+bs[1].URL+","+bs[2].URL)
	f.Addr, f.Admin = addr, coreAdminDefault
	coreWaitStarted(t, f, "fulcrum started")
	c := coreClient(t)
	bodies := coreSeq(t, c, f.URL("/"), 9)
	for i := 3; i < len(bodies); i++ {
		if bodies[i] != bodies[i-3] {
			t.Fatalf("not a strict rotation: %v", bodies)
		}
	}
	if cnt := coreCount(bodies); len(cnt) != 3 {
		t.Fatalf("distribution %v, want all three", cnt)
	}
	bs[1].Close()
	WaitFor(t, 10*time.Second, "b marked down (200ms interval, 1 failure)", func() bool {
		return !coreByURL(coreAdminBackends(t, f))[bs[1].URL].Up
	})
	// Without a file there is nothing to reload.
	if code, body := coreReload(t, f); code != http.StatusBadRequest {
		t.Errorf("reload without a file: status %d %q, want 400", code, body)
	}
	f.Signal(syscall.SIGINT)
	if code := f.Wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code after SIGINT: %d\n%s", code, f.Logs.String())
	}
}

// TestCoreDemo: `fulcrum demo -listen ADDR` starts three upstreams behind the
// balancer and the admin listener, prints what to curl and stops on Ctrl-C.
// Not parallel: it needs the default admin port 127.0.0.1:9090.
func TestCoreDemo(t *testing.T) {
	coreNeedDefaultAdmin(t)
	addr := coreFreeAddr(t)
	f := coreProc(t, "demo", "-listen", addr)
	f.Addr, f.Admin = addr, coreAdminDefault
	coreWaitStarted(t, f, "Ctrl-C")
	out := f.Logs.String()
	for _, w := range []string{"curl", addr, coreAdminDefault + "/admin/backends", "/metrics"} {
		if !strings.Contains(out, w) {
			t.Errorf("demo output lacks %q:\n%s", w, out)
		}
	}
	c := coreClient(t)
	seen := map[string]bool{}
	for i := 0; i < 3; i++ {
		code, body := Get(t, c, f.URL("/"))
		if code != 200 || !strings.HasPrefix(body, "hello from backend-") {
			t.Fatalf("demo request: %d %q", code, body)
		}
		seen[strings.Fields(body)[2]] = true
	}
	if len(seen) != 3 {
		t.Errorf("three requests reached %v, want three different demo backends", seen)
	}
	if st := coreAdminBackends(t, f); len(st) != 3 {
		t.Errorf("/admin/backends lists %d backends, want 3", len(st))
	}
	if m := coreScrape(t, f); m.sum("loadbalancer_request_count_total") != 3 {
		t.Errorf("request count %v, want 3", m.sum("loadbalancer_request_count_total"))
	}
	f.Signal(os.Interrupt)
	if code := f.Wait(15 * time.Second); code != 0 {
		t.Fatalf("demo exit code after Ctrl-C: %d\n%s", code, f.Logs.String())
	}
	if coreListening(addr) {
		t.Fatal("demo still listening after exit")
	}
}
