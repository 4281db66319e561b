// Command fulcrum is an HTTP load balancer.
//
//	fulcrum -config fulcrum.json      run from a config file (JSON or YAML)
//	fulcrum -backends URL,URL ...     run from flags
//	fulcrum validate -config FILE     check a config file and exit 0 or 1
//	fulcrum validate -config FILE -against URL
//	                                  also print what a reload to FILE would change
//	fulcrum demo                      run with three built-in demo backends
//	fulcrum version | help
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"fulcrum/internal/admin"
	"fulcrum/internal/config"
	"fulcrum/internal/engine"
	"fulcrum/internal/metrics"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `fulcrum — an HTTP load balancer

Usage:
  fulcrum [flags]                  run the balancer
  fulcrum validate -config FILE    check a config file (exit 0 if valid, 1 if not)
  fulcrum validate -config FILE -against http://127.0.0.1:9090 [-token-file FILE]
                                   and print what a reload of that fulcrum to FILE
                                   would change, one line each (token also from
                                   $FULCRUM_ADMIN_TOKEN)
  fulcrum demo [flags]             run with three demo backends built in
  fulcrum version                  print the version
  fulcrum help                     show this help

Flags:
  -config FILE                 config file (.json, .yaml or .yml)
  -listen ADDR                 listen address (default ":8080")
  -strategy NAME               balancing strategy (default "round_robin")
  -health-check-interval DUR   health check interval (default "30s")
  -max-fail-count N            failures before a backend is marked down (default 3)
  -backends URL[,URL...]       backend URLs (default "http://localhost:8081,http://localhost:8082,http://localhost:8083")
  -admin ADDR                  admin listener address (default "127.0.0.1:9090"; "" turns it off)

Flags given together with -config override the file.
Admin API (default 127.0.0.1:9090, see -admin): GET /metrics, GET /admin/backends,
GET /admin/events, GET /admin/config, POST /admin/reload (?dry_run=1 previews it),
GET /healthz, and per backend
POST /admin/pools/POOL/backends/HOST:PORT/{drain,disable,enable}, PUT .../weight.
SIGHUP reloads; SIGTERM/SIGINT shut down gracefully.
`

// clampProcs lowers GOMAXPROCS to the number of CPUs the process may run on
// (its CPU affinity, which runtime.NumCPU reports). More Ps than CPUs only
// adds thread wake-ups and spinning that steal time from the working thread:
// measured on W1 pinned to one core, GOMAXPROCS=2 served 0.7-0.8x of 1.
// It returns the value set by the environment when it was lowered, else 0.
func clampProcs() int {
	cur, n := runtime.GOMAXPROCS(0), runtime.NumCPU()
	if cur > n {
		runtime.GOMAXPROCS(n)
		return cur
	}
	return 0
}

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 {
		switch args[0] {
		case "version", "-version", "--version":
			fmt.Fprintln(stdout, "fulcrum", buildVersion())
			return 0
		case "help", "-h", "-help", "--help":
			fmt.Fprint(stdout, usage)
			return 0
		case "validate":
			return validate(args[1:], stdout, stderr)
		case "demo":
			return demo(args[1:], stdout, stderr)
		}
	}
	fs, configPath, ov, err := parseFlags("fulcrum", args, stderr)
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprint(stdout, usage)
			return 0
		}
		return 2
	}
	if fs.NArg() == len(args) && fs.NArg() > 0 {
		fmt.Fprintf(stderr, "fulcrum: unknown command %q (see fulcrum help)\n", fs.Arg(0))
		return 2
	}
	if unexpectedArgs("fulcrum", fs.Args(), stderr) {
		return 2
	}
	load := func() (*config.Config, error) {
		if *configPath == "" {
			return config.FromFlags(ov)
		}
		return config.Load(*configPath, ov)
	}
	cfg, err := load()
	if err != nil {
		fmt.Fprintf(stderr, "fulcrum: %v\n", err)
		return 1
	}
	var loader engine.Loader
	if *configPath != "" {
		loader = load
	}
	return serve(cfg, loader, stdout, stderr, nil)
}

func buildVersion() string {
	if version != "dev" {
		return version
	}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && len(s.Value) >= 12 {
				return "dev-" + s.Value[:12]
			}
		}
	}
	return version
}

// parseFlags parses the run flags, and the flags extra registers; only run
// flags actually given become overrides.
func parseFlags(name string, args []string, stderr io.Writer, extra ...func(*flag.FlagSet)) (*flag.FlagSet, *string, *config.Overrides, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	for _, register := range extra {
		register(fs)
	}
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage) }
	configPath := fs.String("config", "", "config file")
	listen := fs.String("listen", ":8080", "listen address")
	strategy := fs.String("strategy", "round_robin", "balancing strategy")
	interval := fs.String("health-check-interval", "30s", "health check interval")
	maxFail := fs.Int("max-fail-count", 3, "failures before a backend is marked down")
	backends := fs.String("backends", "http://localhost:8081,http://localhost:8082,http://localhost:8083", "backend URLs")
	adminAddr := fs.String("admin", "127.0.0.1:9090", "admin listener address")
	if err := fs.Parse(args); err != nil {
		return nil, nil, nil, err
	}
	ov := &config.Overrides{}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "listen":
			ov.Listen = listen
		case "strategy":
			ov.Strategy = strategy
		case "health-check-interval":
			ov.HealthCheckInterval = interval
		case "max-fail-count":
			ov.MaxFailCount = maxFail
		case "backends":
			ov.Backends = backends
		case "admin":
			ov.Admin = adminAddr
		}
	})
	return fs, configPath, ov, nil
}

// unexpectedArgs reports arguments left after the flags, which no command
// takes (a flag after them is not parsed either, so they are never ignored).
func unexpectedArgs(cmd string, rest []string, stderr io.Writer) bool {
	if len(rest) == 0 {
		return false
	}
	fmt.Fprintf(stderr, "%s: unexpected argument %q (flags go before any other argument; see fulcrum help)\n", cmd, rest[0])
	return true
}

func validate(args []string, stdout, stderr io.Writer) int {
	var against againstFlags
	fs, configPath, ov, err := parseFlags("fulcrum validate", args, stderr, against.register)
	if err != nil {
		return 2
	}
	rest := fs.Args()
	if *configPath == "" && len(rest) > 0 {
		*configPath, rest = rest[0], rest[1:] // fulcrum validate FILE
	}
	if *configPath == "" {
		fmt.Fprintln(stderr, "fulcrum validate: -config FILE is required")
		return 2
	}
	if unexpectedArgs("fulcrum validate", rest, stderr) {
		return 2
	}
	if !against.check(stderr) {
		return 2
	}
	cfg, err := config.Load(*configPath, ov)
	if err == nil {
		// The certificates too: start-up would refuse what does not load.
		err = engine.CheckCertificates(cfg)
	}
	if err != nil {
		fmt.Fprintf(stderr, "%v\n", err)
		fmt.Fprintf(stderr, "fulcrum validate: %s is NOT valid\n", *configPath)
		return 1
	}
	n := 0
	for _, p := range cfg.Pools {
		n += len(p.Backends)
	}
	for _, w := range cfg.Warnings {
		fmt.Fprintf(stderr, "warning: %s\n", w)
	}
	var warned string
	switch len(cfg.Warnings) {
	case 0:
	case 1:
		warned = " with 1 warning"
	default:
		warned = fmt.Sprintf(" with %d warnings", len(cfg.Warnings))
	}
	// With -against, stdout holds only the changes, so that it diffs.
	summary := stdout
	if against.url != "" {
		summary = stderr
	}
	if !cfg.Flat {
		routes := 0
		for _, l := range cfg.Listeners {
			routes += len(l.Routes)
		}
		fmt.Fprintf(summary, "fulcrum validate: %s is valid (%d listeners, %d pools, %d routes, %d backends)%s\n",
			*configPath, len(cfg.Listeners), len(cfg.Pools), routes, n, warned)
	} else {
		fmt.Fprintf(summary, "fulcrum validate: %s is valid (%d backends, strategy %s, listen %s)%s\n",
			*configPath, n, cfg.Pools[0].Strategy, cfg.Listeners[0].Listen, warned)
	}
	if against.url != "" {
		return against.preview(cfg, *configPath, stdout, stderr)
	}
	return 0
}

// sampleSource lets the metrics registry read backend state from an engine
// that is created after the metrics.
type sampleSource struct{ e atomic.Pointer[engine.Engine] }

func (s *sampleSource) BackendSamples(dst []metrics.BackendSample) []metrics.BackendSample {
	if e := s.e.Load(); e != nil {
		return e.BackendSamples(dst)
	}
	return dst
}

func newLogger(cfg *config.Config, w io.Writer) (*slog.Logger, *slog.LevelVar) {
	lv := new(slog.LevelVar)
	lv.Set(cfg.LogLevel)
	opts := &slog.HandlerOptions{Level: lv}
	if cfg.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts)), lv
	}
	return slog.New(slog.NewTextHandler(w, opts)), lv
}

// serve runs the balancer until SIGTERM/SIGINT. ready, if non-nil, receives
// the engine once it serves (used by demo).
func serve(cfg *config.Config, loader engine.Loader, stdout, stderr io.Writer, ready func(*engine.Engine)) int {
	log, lv := newLogger(cfg, stderr)
	slog.SetDefault(log)
	if was := clampProcs(); was > 0 {
		log.Info("GOMAXPROCS lowered to the CPUs this process may use", "requested", was, "gomaxprocs", runtime.GOMAXPROCS(0))
	}
	// Take over the signals before any port is bound: a SIGTERM or SIGHUP
	// that arrives once the listeners accept connections must not kill the
	// process with the default action; it is handled when serving starts.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGHUP, syscall.SIGTERM, syscall.SIGINT)
	defer signal.Stop(sigs)
	reg := prometheus.NewRegistry()
	src := &sampleSource{}
	m := metrics.New(reg, src)

	eng, err := engine.New(cfg, engine.Options{Logger: log, Metrics: m, Loader: loader, LevelVar: lv, AccessLog: stderr})
	if err != nil {
		log.Error("start-up failed", "err", err)
		return 1
	}
	src.e.Store(eng)

	var adminSrv *admin.Server
	var adminLn net.Listener
	if cfg.AdminAddr != "" {
		adminLn, err = net.Listen("tcp", cfg.AdminAddr)
		if err != nil {
			log.Error("start-up failed", "err", fmt.Errorf("admin_addr %q: %w (-admin ADDR moves the admin listener)", cfg.AdminAddr, err))
			eng.Shutdown(context.Background())
			return 1
		}
		adminSrv = admin.New(eng, reg, cfg.AdminToken, log)
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	eng.Start(ctx)
	var adminHTTP *http.Server
	if adminLn != nil {
		adminHTTP = &http.Server{Handler: adminSrv, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 60 * time.Second}
		go adminHTTP.Serve(adminLn)
	}
	svc := cfg.Pools[0]
	log.Info("fulcrum started", "version", buildVersion(), "gomaxprocs", runtime.GOMAXPROCS(0), "listen", eng.Addr().String(), "admin", cfg.AdminAddr,
		"strategy", svc.Strategy, "backends", len(svc.Backends), "health_check", svc.HealthCheck.Type,
		"health_check_interval", svc.HealthCheck.Interval.String())
	if ready != nil {
		ready(eng)
	}

	for {
		select {
		case err := <-eng.Done():
			if err != nil {
				log.Error("listener failed", "err", err)
				return 1
			}
			return 0
		case sig := <-sigs:
			if sig == syscall.SIGHUP {
				summary, err := eng.Reload(ctx)
				if err != nil {
					log.Error("reload rejected; running configuration unchanged", "trigger", "SIGHUP", "err", err)
				} else if adminSrv != nil {
					adminSrv.SetToken(eng.Config().AdminToken)
					_ = summary
				}
				continue
			}
			timeout := eng.Config().ShutdownTimeout
			log.Info("shutting down", "signal", sig.String(), "timeout", timeout.String())
			sctx, scancel := context.WithTimeout(context.Background(), timeout)
			err := eng.Shutdown(sctx)
			scancel()
			if adminHTTP != nil {
				adminSrv.Close() // event streams end; Shutdown would wait for them
				actx, acancel := context.WithTimeout(context.Background(), time.Second)
				adminHTTP.Shutdown(actx)
				acancel()
			}
			if err != nil {
				log.Warn("shutdown timeout reached; open connections were closed", "err", err)
			}
			log.Info("stopped")
			return 0
		}
	}
}
