package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
)

// serve answers every request with 200 "ok": the backend behind fulcrum in
// bench/testssl.sh. It runs until SIGTERM or SIGINT.
func serve(args []string) int {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	addr := fs.String("addr", "127.0.0.1:0", "host:port to listen on")
	_ = fs.Parse(args)
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "text/plain")
		_, _ = w.Write([]byte("ok\n"))
	})}
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	go func() { <-sigs; srv.Close() }()
	if err := srv.Serve(ln); err != nil && err != http.ErrServerClosed {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// finding is one entry of testssl.sh's flat JSON (--jsonfile).
type finding struct {
	ID       string `json:"id"`
	Severity string `json:"severity"`
	Finding  string `json:"finding"`
}

// certOnly are the ids (without a " <cert#N>" suffix) of findings about the
// test certificate itself, which a self-signed certificate for 127.0.0.1
// cannot pass: its trust chain, validity, names, CRL/OCSP URIs and stapling,
// CAA. They are listed, never counted as failures.
var certOnly = map[string]bool{
	"cert_chain_of_trust": true, "cert_trust": true, "cert_caIssuers": true,
	"cert_crlDistributionPoints": true, "cert_ocspURL": true, "cert_revocation": true,
	"cert_ocspRevoked": true, "cert_crlRevoked": true, "OCSP_stapling": true, "cert_mustStapleExtension": true,
	"cert_notBefore": true, "cert_notAfter": true, "cert_validityPeriod": true, "cert_expirationStatus": true,
	"cert_extlifeSpan": true, "cert_commonName": true, "cert_commonName_wo_SNI": true, "cert_subjectAltName": true,
	"cert_certificatePolicies_EV": true, "DNS_CAArecord": true,
}

// scannerOnly are the ids of notes about the machine running testssl.sh,
// not about the server: engine_problem says the local openssl has no GOST
// engine (Debian's OpenSSL 3 has none), so GOST suites cannot be tried,
// which fulcrum never offers anyway.
var scannerOnly = map[string]bool{"engine_problem": true}

// sslcheck reads testssl.sh's JSON and decides: exit 1 if any finding other
// than those about the certificate itself is MEDIUM, HIGH or CRITICAL, if a
// check could not run (WARN, FATAL), if TLS 1.3 is not offered or if SSLv2,
// SSLv3, TLS 1.0 or TLS 1.1 is.
func sslcheck(args []string) int {
	fs := flag.NewFlagSet("sslcheck", flag.ExitOnError)
	file := fs.String("json", "", "testssl.sh --jsonfile output")
	_ = fs.Parse(args)
	raw, err := os.ReadFile(*file)
	if err != nil {
		fmt.Println(err)
		return 2
	}
	var findings []finding
	if err := json.Unmarshal(raw, &findings); err != nil {
		fmt.Println("not testssl.sh JSON:", err)
		return 2
	}
	bad, allowed := 0, 0
	proto := map[string]string{}
	for _, f := range findings {
		id, _, _ := strings.Cut(f.ID, " ")
		switch id {
		case "SSLv2", "SSLv3", "TLS1", "TLS1_1", "TLS1_2", "TLS1_3":
			proto[id] = f.Finding
		}
		switch f.Severity {
		case "MEDIUM", "HIGH", "CRITICAL", "WARN", "FATAL":
		default:
			continue
		}
		if scannerOnly[id] {
			fmt.Printf("ignored (about the scanner's openssl): %s %s: %s\n", f.ID, f.Severity, f.Finding)
			continue
		}
		if certOnly[id] {
			allowed++
			fmt.Printf("allowed (test certificate): %s %s: %s\n", f.ID, f.Severity, f.Finding)
			continue
		}
		bad++
		fmt.Printf("FINDING: %s %s: %s\n", f.ID, f.Severity, f.Finding)
	}
	for _, id := range []string{"SSLv2", "SSLv3", "TLS1", "TLS1_1"} {
		if !strings.HasPrefix(proto[id], "not offered") {
			bad++
			fmt.Printf("FINDING: %s must not be offered: %q\n", id, proto[id])
		}
	}
	if !strings.HasPrefix(proto["TLS1_3"], "offered") {
		bad++
		fmt.Printf("FINDING: TLS1_3 must be offered: %q\n", proto["TLS1_3"])
	}
	fmt.Printf("protocols: SSLv2 %q, SSLv3 %q, TLS 1.0 %q, TLS 1.1 %q, TLS 1.2 %q, TLS 1.3 %q\n",
		proto["SSLv2"], proto["SSLv3"], proto["TLS1"], proto["TLS1_1"], proto["TLS1_2"], proto["TLS1_3"])
	fmt.Printf("%d findings in all, %d MEDIUM or higher about the test certificate (allowed), %d other problems\n",
		len(findings), allowed, bad)
	if bad > 0 {
		return 1
	}
	return 0
}
