package proxy_test

import (
	"net/netip"
	"strings"
	"testing"

	"fulcrum/internal/h1"
	"fulcrum/internal/proxy"
)

// xffCandidates lists the addresses ClientIP may return for the given
// fields: every entry that parses as an address (or address:port), unmapped.
func xffCandidates(fields []string) map[netip.Addr]bool {
	out := map[netip.Addr]bool{}
	for _, f := range fields {
		for _, e := range strings.Split(f, ",") {
			e = strings.Trim(e, " \t")
			if a, err := netip.ParseAddr(e); err == nil {
				out[a.Unmap()] = true
			} else if ap, err := netip.ParseAddrPort(e); err == nil {
				out[ap.Addr().Unmap()] = true
			}
		}
	}
	return out
}

func FuzzClientIP(f *testing.F) {
	f.Add("127.0.0.1", "1.2.3.4, 10.0.0.1", "127.0.0.0/8,10.0.0.0/8")
	f.Add("10.1.1.1", "garbage, 1.2.3.4:80\n[2001:db8::1]:443", "10.0.0.0/8")
	f.Add("::1", "::ffff:1.2.3.4,,fe80::1%eth0", "::1/128")
	f.Add("192.0.2.1", "6.6.6.6", "")
	f.Fuzz(func(t *testing.T, peerS, header, trustedS string) {
		peer, err := netip.ParseAddr(peerS)
		if err != nil {
			return
		}
		peer = peer.Unmap()
		var trusted []netip.Prefix
		for _, s := range strings.Split(trustedS, ",") {
			if p, err := netip.ParsePrefix(strings.TrimSpace(s)); err == nil {
				trusted = append(trusted, p)
			}
		}
		fields := strings.Split(header, "\n")
		hs := []h1.Header{{Name: []byte("Host"), Value: []byte("h")}}
		for i, v := range fields {
			name := "X-Forwarded-For"
			if i%2 == 1 {
				name = "x-forwarded-for"
			}
			hs = append(hs, h1.Header{Name: []byte(name), Value: []byte(v)})
		}
		got := proxy.ClientIP(peer, hs, trusted)
		if got == peer {
			return
		}
		peerTrusted := false
		for _, p := range trusted {
			if p.Contains(peer) {
				peerTrusted = true
			}
		}
		if !peerTrusted {
			t.Fatalf("untrusted peer %v, but ClientIP returned %v", peer, got)
		}
		if !xffCandidates(fields)[got] {
			t.Fatalf("ClientIP returned %v, which is neither the peer %v nor in X-Forwarded-For %q", got, peer, fields)
		}
	})
}
