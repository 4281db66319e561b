package main

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"

	"fulcrum/internal/config"
	"fulcrum/internal/engine"
)

// demoBackend is one in-process upstream that answers with its name after a delay.
type demoBackend struct {
	name  string
	delay time.Duration
}

func (d demoBackend) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path == "/health" {
		w.Write([]byte("ok\n"))
		return
	}
	time.Sleep(d.delay)
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Demo-Backend", d.name)
	fmt.Fprintf(w, "hello from %s (%s %s, took %v)\n", d.name, r.Method, r.URL.Path, d.delay)
}

// demo starts three upstreams on loopback ports, then the balancer in front
// of them, and runs until Ctrl-C.
func demo(args []string, stdout, stderr io.Writer) int {
	fs, configPath, ov, err := parseFlags("fulcrum demo", args, stderr)
	if err != nil {
		return 2
	}
	if unexpectedArgs("fulcrum demo", fs.Args(), stderr) {
		return 2
	}
	if *configPath != "" {
		fmt.Fprintln(stderr, "fulcrum demo: -config is not used by the demo; run fulcrum -config FILE instead")
		return 2
	}
	backends := []demoBackend{{"backend-1", 5 * time.Millisecond}, {"backend-2", 25 * time.Millisecond}, {"backend-3", 60 * time.Millisecond}}
	var urls []string
	var servers []*http.Server
	for _, b := range backends {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			fmt.Fprintf(stderr, "fulcrum demo: %v\n", err)
			return 1
		}
		srv := &http.Server{Handler: b, ReadHeaderTimeout: 5 * time.Second}
		servers = append(servers, srv)
		go srv.Serve(ln)
		urls = append(urls, "http://"+ln.Addr().String())
	}
	defer func() {
		for _, s := range servers {
			s.Close()
		}
	}()
	if ov.Backends == nil {
		joined := strings.Join(urls, ",")
		ov.Backends = &joined
	}
	if ov.HealthCheckInterval == nil {
		iv := "2s"
		ov.HealthCheckInterval = &iv
	}
	cfg, err := config.FromFlags(ov)
	if err != nil {
		fmt.Fprintf(stderr, "fulcrum demo: %v\n", err)
		return 1
	}
	listen := cfg.Listeners[0].Listen
	return serve(cfg, nil, stdout, stderr, func(e *engine.Engine) {
		addr := e.Addr().String()
		if strings.HasPrefix(listen, ":") {
			addr = "localhost" + listen
		}
		adminTry := "  (the admin listener is off: -admin \"\")\n"
		if cfg.AdminAddr != "" {
			adminTry = fmt.Sprintf("  open http://%s/ in a browser             # the live dashboard\n"+
				"  curl http://%s/admin/backends            # backend state (admin listener)\n"+
				"  curl -s http://%s/metrics | grep loadbalancer_\n", cfg.AdminAddr, cfg.AdminAddr, cfg.AdminAddr)
		}
		fmt.Fprintf(stdout, `
fulcrum demo is running: %d demo backends (%s) behind http://%s, strategy %s.
started as: %s

Try:
  curl http://%s/                          # repeat it: the answer rotates over the backends
  for i in 1 2 3 4 5 6; do curl -s http://%s/; done
%s  fulcrum demo -strategy least_response_time   # try another strategy
  fulcrum demo -listen 127.0.0.1:8000 -admin 127.0.0.1:9191   # move the listeners

Press Ctrl-C to stop.

`, len(urls), strings.Join(urls, ", "), addr, cfg.Pools[0].Strategy, commandLine("fulcrum demo", args), addr, addr, adminTry)
	})
}

// commandLine renders name and args as a shell command line, quoting the
// arguments that need it, so that it can be pasted back.
func commandLine(name string, args []string) string {
	var b strings.Builder
	b.WriteString(name)
	for _, a := range args {
		b.WriteByte(' ')
		if a != "" && strings.Trim(a, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-+=:,./@%") == "" {
			b.WriteString(a)
			continue
		}
		b.WriteString("'" + strings.ReplaceAll(a, "'", `'\''`) + "'")
	}
	return b.String()
}
