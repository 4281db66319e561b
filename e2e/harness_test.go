// Package e2e drives the built fulcrum binary over real loopback sockets.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"fulcrum/internal/testutil"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// binPath is the fulcrum binary built once by TestMain.
var binPath string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "fulcrum-e2e-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binPath = filepath.Join(dir, "fulcrum")
	args := []string{"build", "-o", binPath}
	if raceEnabled {
		args = append(args, "-race")
	}
	args = append(args, "../cmd/fulcrum")
	cmd := exec.Command("go", args...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "building fulcrum:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// freePort returns a free loopback TCP port.
func freePort(t testing.TB) int {
	t.Helper()
	// The kernel may hand out a port it just gave another test (or the
	// same one): never return one twice in this process.
	for range 100 {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := ln.Addr().(*net.TCPAddr).Port
		ln.Close()
		if _, taken := portsGiven.LoadOrStore(port, true); !taken {
			return port
		}
	}
	t.Fatal("no unused free port in 100 tries")
	return 0
}

// portsGiven holds the ports freePort returned.
var portsGiven sync.Map

// syncBuffer is a goroutine-safe log sink.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Fulcrum is a running fulcrum process.
type Fulcrum struct {
	t          testing.TB
	Cmd        *exec.Cmd
	Addr       string // traffic listener, host:port
	Admin      string // admin listener, host:port ("" if off)
	ConfigPath string
	Logs       *syncBuffer
	exited     chan struct{}
	exitErr    error
}

// StartFulcrum writes cfg (a JSON object body without listen_addr/admin_addr,
// which are filled with free ports unless present) to a file and runs
// `fulcrum -config FILE extra...`. It waits until both listeners answer.
func StartFulcrum(t testing.TB, cfg string, extra ...string) *Fulcrum {
	t.Helper()
	f := &Fulcrum{t: t, Logs: &syncBuffer{}, exited: make(chan struct{})}
	if !strings.Contains(cfg, `"listen_addr"`) {
		f.Addr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		cfg = strings.Replace(cfg, "{", fmt.Sprintf(`{"listen_addr": %q, `, f.Addr), 1)
	}
	if !strings.Contains(cfg, `"admin_addr"`) {
		f.Admin = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		cfg = strings.Replace(cfg, "{", fmt.Sprintf(`{"admin_addr": %q, `, f.Admin), 1)
	}
	f.ConfigPath = filepath.Join(t.TempDir(), "fulcrum.json")
	if err := os.WriteFile(f.ConfigPath, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"-config", f.ConfigPath}, extra...)
	f.Cmd = exec.Command(binPath, args...)
	f.Cmd.Stdout, f.Cmd.Stderr = f.Logs, f.Logs
	if err := f.Cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { f.exitErr = f.Cmd.Wait(); close(f.exited) }()
	t.Cleanup(func() { f.Stop() })
	f.waitListening(t)
	return f
}

func (f *Fulcrum) waitListening(t testing.TB) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range []string{f.Addr, f.Admin} {
		if addr == "" {
			continue
		}
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				c.Close()
				break
			}
			select {
			case <-f.exited:
				t.Fatalf("fulcrum exited before listening: %v\nlogs:\n%s", f.exitErr, f.Logs.String())
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("fulcrum not listening on %s after 10s\nlogs:\n%s", addr, f.Logs.String())
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// WriteConfig replaces the config file (for reload tests); listen_addr and
// admin_addr are filled in as in StartFulcrum.
func (f *Fulcrum) WriteConfig(cfg string) {
	f.t.Helper()
	if !strings.Contains(cfg, `"listen_addr"`) && f.Addr != "" {
		cfg = strings.Replace(cfg, "{", fmt.Sprintf(`{"listen_addr": %q, `, f.Addr), 1)
	}
	if !strings.Contains(cfg, `"admin_addr"`) && f.Admin != "" {
		cfg = strings.Replace(cfg, "{", fmt.Sprintf(`{"admin_addr": %q, `, f.Admin), 1)
	}
	tmp := f.ConfigPath + ".tmp"
	if err := os.WriteFile(tmp, []byte(cfg), 0o644); err != nil {
		f.t.Fatal(err)
	}
	if err := os.Rename(tmp, f.ConfigPath); err != nil {
		f.t.Fatal(err)
	}
}

// Signal sends sig to the process.
func (f *Fulcrum) Signal(sig os.Signal) {
	f.t.Helper()
	if err := f.Cmd.Process.Signal(sig); err != nil {
		f.t.Fatal(err)
	}
}

// Wait waits up to d for the process to exit and returns its exit code (-1 on timeout).
func (f *Fulcrum) Wait(d time.Duration) int {
	select {
	case <-f.exited:
		return f.Cmd.ProcessState.ExitCode()
	case <-time.After(d):
		return -1
	}
}

// Stop terminates the process (SIGTERM, then SIGKILL after 10 s).
func (f *Fulcrum) Stop() {
	select {
	case <-f.exited:
		return
	default:
	}
	f.Cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-f.exited:
	case <-time.After(10 * time.Second):
		f.Cmd.Process.Kill()
		<-f.exited
	}
}

// URL returns the traffic URL for path.
func (f *Fulcrum) URL(path string) string { return "http://" + f.Addr + path }

// AdminURL returns the admin URL for path.
func (f *Fulcrum) AdminURL(path string) string { return "http://" + f.Admin + path }

// Backend is a named upstream test server that counts its requests.
type Backend struct {
	Name   string
	Srv    *http.Server
	Ln     net.Listener
	URL    string
	Hits   atomic.Int64
	mu     sync.Mutex
	closed bool
}

// StartBackend starts a backend answering "NAME" on 127.0.0.1:port (0 = any).
// handler, if non-nil, replaces the default answer.
func StartBackend(t testing.TB, name string, port int, handler http.HandlerFunc) *Backend {
	t.Helper()
	ln, err := net.Listen("tcp", fmt.Sprintf("127.0.0.1:%d", port))
	if err != nil {
		t.Fatal(err)
	}
	b := &Backend{Name: name, Ln: ln, URL: "http://" + ln.Addr().String()}
	b.Srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.Hits.Add(1)
		if handler != nil {
			handler(w, r)
			return
		}
		w.Header().Set("X-Backend", name)
		io.WriteString(w, name)
	}), ReadHeaderTimeout: 5 * time.Second}
	go b.Srv.Serve(ln)
	t.Cleanup(b.Close)
	return b
}

// Addr is host:port of the backend.
func (b *Backend) Addr() string { return b.Ln.Addr().String() }

// Close stops the backend and closes its connections.
func (b *Backend) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return
	}
	b.closed = true
	b.Srv.Close()
}

// Get fetches url with a fresh client and returns status and body.
func Get(t testing.TB, c *http.Client, url string) (int, string) {
	t.Helper()
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// WaitFor polls cond until it holds or d passes.
func WaitFor(t testing.TB, d time.Duration, what string, cond func() bool) {
	t.Helper()
	testutil.WaitFor(t, d, what, cond)
}

// ctxTimeout is a helper for bounded operations.
func ctxTimeout(d time.Duration) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.Background(), d)
}
