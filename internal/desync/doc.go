// Package desync runs the AWS http-desync-guardian request corpus against an
// HTTP proxy and judges, case by case, whether the proxy let a request
// smuggling (desynchronisation) attempt through. It is a test-support
// library: only _test.go files import it.
//
// The corpus is third-party data (Apache-2.0). It is read at test time from
// <repo root>/../shared/conformance/http-desync-guardian and is never copied
// into this repository; tests that need it call [LoadOrSkip], which skips
// when the directory is missing. Its README describes the format and the
// judging rules implemented by [Judge].
//
// A typical test:
//
//	cases := desync.LoadOrSkip(t)
//	be, err := desync.NewRecordingBackend()
//	... start the proxy in front of be.Addr() ...
//	var vs []desync.Verdict
//	for _, c := range cases {
//		vs = append(vs, desync.Judge(proxyAddr, be, c))
//	}
//	t.Log(desync.Summary(vs))
//
// # Decoding
//
// Request fields go through two escaping levels, as the corpus README says:
// YAML's own, then the corpus' backslash escapes. One choice is ours: an
// \xHH escape, at either level, stands for the single octet 0xHH. yaml.v3
// (and the upstream Rust harness) turn \xA0 into the code point U+00A0,
// i.e. the two UTF-8 bytes C2 A0; for a wire-level corpus about obs-text
// (%x80-FF octets) the one-byte reading is the useful one, and it is the
// only way to express a lone 0x88 byte at all. Literal UTF-8 in the files
// (such as "Tranſfer-Encoding") stays UTF-8. Case names are labels and get
// the YAML level only, so "\r in name is bad" prints as written.
//
// # Rendering
//
// See [Render]. In short: the request line and the case's header lines are
// written byte for byte; a "Host: localhost" line is appended after them
// when the case has no Host field; the body is chosen so that every reading
// of the framing headers that some HTTP/1.1 engine might take is satisfied
// where that is possible, so that a proxy is never left waiting for bytes
// that will not come.
package desync
