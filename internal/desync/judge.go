package desync

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
)

// Special Verdict.Status values.
const (
	// StatusClosed: the proxy closed the connection (or reset it, or sent
	// bytes that are not an HTTP response) without an HTTP response.
	StatusClosed = 0
	// StatusTimeout: no response within ResponseTimeout and the connection
	// was still open.
	StatusTimeout = -1
)

// Time bounds of one Judge call. The worst case is about
// ResponseTimeout + 2*drainTimeout + settleMax.
const (
	// ResponseTimeout bounds dialing, writing the request and reading the
	// response head.
	ResponseTimeout = 2 * time.Second
	// drainTimeout bounds the wait for the request write to finish and for
	// the proxy to close the connection after the response.
	drainTimeout = 500 * time.Millisecond
	// settleStep and settleMax: after the exchange, Judge polls the
	// Recorder until two polls settleStep apart agree, for at most
	// settleMax. Proving that nothing reached the backend needs some quiet
	// period; a proxy that forwards later than this is not caught.
	settleStep = 20 * time.Millisecond
	settleMax  = 200 * time.Millisecond
)

// Verdict is the outcome of one case.
type Verdict struct {
	Case Case
	// Status is the status code of the proxy's first non-1xx response, or
	// StatusClosed or StatusTimeout.
	Status int
	// Reached is len(Forwarded): how many requests reached the backend.
	Reached int
	// Forwarded are the raw requests the Recorder saw.
	Forwarded [][]byte
	// Safe reports whether the proxy passed the case under its tier's rule.
	// Acceptable cases are recorded only and are always Safe; skipped cases
	// are Safe too.
	Safe bool
	// Why explains the verdict in one line.
	Why string
	// Closed reports that the proxy closed the client connection, before
	// or after its response (within drainTimeout of the response; Judge
	// half-closes its side first).
	Closed bool
	// Skipped is set for cases that are not Renderable; nothing was sent.
	Skipped bool
}

// Judge sends c.Raw (or Render(c) when Raw is nil) to proxyAddr on a fresh
// TCP connection, reads the response head, half-closes, drains until the
// proxy closes, then asks rec what reached the backend and applies the
// corpus' rule for c.Tier:
//
//   - Severe: refused (4xx, 501 or 505, or closed without a response) and
//     nothing reached the backend.
//   - Ambiguous: refused likewise with nothing forwarded, or forwarded as
//     exactly one request with unambiguous framing (see ambiguity).
//   - Compliant: forwarded once and answered 200; or answered 501, with at
//     most one request forwarded, when the case has a Transfer-Encoding
//     field (an unimplemented transfer coding, RFC 9112 section 6.1).
//   - Acceptable: recorded, not judged.
//
// Judge calls rec.Reset first, so cases must run one at a time against one
// Recorder. It blocks for at most about 3.2s (ResponseTimeout for dial,
// write and response head, then bounded drain and settle periods); the one
// goroutine it starts, to write the request, has exited when it returns.
func Judge(proxyAddr string, rec Recorder, c Case) Verdict {
	v := Verdict{Case: c}
	if !c.Renderable {
		v.Skipped, v.Safe = true, true
		v.Why = "skipped: cannot be written as a request line"
		return v
	}
	raw := c.Raw
	if raw == nil {
		raw = Render(c)
	}
	rec.Reset()
	out, err := exchange(proxyAddr, raw)
	if err != nil {
		v.Why = "cannot reach the proxy: " + err.Error()
		return v
	}
	v.Status, v.Closed = out.status, out.closed
	v.Forwarded = settle(rec)
	v.Reached = len(v.Forwarded)
	v.Safe, v.Why = assess(c, v)
	if out.note != "" {
		v.Why += " (" + out.note + ")"
	}
	return v
}

// refused reports whether status is a refusal under the corpus' rules.
func refused(status int) bool {
	return status == StatusClosed || (status >= 400 && status < 500) || status == 501 || status == 505
}

func describe(v Verdict) string {
	var s string
	switch v.Status {
	case StatusClosed:
		s = "closed without a response"
	case StatusTimeout:
		s = fmt.Sprintf("no response within %v", ResponseTimeout)
	default:
		s = "status " + strconv.Itoa(v.Status)
		if v.Closed {
			s += ", then closed"
		}
	}
	return fmt.Sprintf("%s, %d request(s) reached the backend", s, v.Reached)
}

// assess applies c.Tier's rule to an exchange's outcome.
func assess(c Case, v Verdict) (bool, string) {
	what := describe(v)
	switch c.Tier {
	case Severe:
		if v.Reached == 0 && refused(v.Status) {
			return true, "refused: " + what
		}
		return false, what
	case Ambiguous:
		switch {
		case v.Reached == 0 && refused(v.Status):
			return true, "refused: " + what
		case v.Reached == 0:
			return false, what
		case v.Reached > 1:
			return false, what + "; forwarded as more than one request"
		}
		if p := ambiguity(v.Forwarded[0]); p != "" {
			return false, what + "; forwarded framing: " + p
		}
		return true, "forwarded with unambiguous framing: " + what
	case Compliant:
		if v.Reached == 1 && v.Status == 200 {
			return true, what
		}
		if v.Status == 501 && v.Reached <= 1 && hasField(c, "Transfer-Encoding") {
			return true, "501 for a transfer coding: " + what
		}
		return false, "want one forwarded request and 200: " + what
	default: // Acceptable
		return true, "recorded only: " + what
	}
}

func hasField(c Case, name string) bool {
	for _, h := range c.Headers {
		if strings.EqualFold(h[0], name) {
			return true
		}
	}
	return false
}

// ambiguity returns "" when raw is one HTTP/1.x request whose framing only
// one reading exists for, else the first problem found:
//   - the head must be CRLF-terminated lines without bare CR or LF, a
//     request line "token SP target SP HTTP/1.0|HTTP/1.1" whose target has
//     no control characters, spaces or non-ASCII bytes, and field lines
//     "token:value" (no obs-fold);
//   - no field name that, lower-cased with runs of '-' and '_' collapsed to
//     '-', equals transfer-encoding or content-length without being it;
//   - not both Content-Length and Transfer-Encoding; at most one
//     Content-Length, all digits; Transfer-Encoding ending in its only
//     chunked, and not on HTTP/1.0;
//   - no body framing on GET or HEAD (Content-Length: 0 is allowed);
//   - the body is exactly what the framing says.
func ambiguity(raw []byte) string {
	end := bytes.Index(raw, []byte("\r\n\r\n"))
	if end < 0 {
		return "incomplete header section"
	}
	head, body := string(raw[:end]), raw[end+4:]
	lines := strings.Split(head, "\r\n")
	for _, l := range lines {
		if strings.ContainsAny(l, "\r\n") {
			return "bare CR or LF in the header section"
		}
	}
	parts := strings.Split(lines[0], " ")
	if len(parts) != 3 || !isToken(parts[0]) || !cleanTarget(parts[1]) ||
		(parts[2] != "HTTP/1.1" && parts[2] != "HTTP/1.0") {
		return fmt.Sprintf("malformed request line %q", lines[0])
	}
	method, version := parts[0], parts[2]
	var cl, te []string
	for _, l := range lines[1:] {
		if l == "" || l[0] == ' ' || l[0] == '\t' {
			return fmt.Sprintf("obs-fold or empty line %q", l)
		}
		name, value, ok := strings.Cut(l, ":")
		if !ok || !isToken(name) {
			return fmt.Sprintf("malformed field line %q", l)
		}
		value = strings.Trim(value, " \t")
		switch lname := strings.ToLower(name); lname {
		case "content-length":
			cl = append(cl, value)
		case "transfer-encoding":
			te = append(te, value)
		default:
			if n := collapseDelims(lname); n == "content-length" || n == "transfer-encoding" {
				return fmt.Sprintf("field %q normalises to %s", name, n)
			}
		}
	}
	if len(cl) > 0 && len(te) > 0 {
		return "both Content-Length and Transfer-Encoding"
	}
	if len(cl) > 1 {
		return fmt.Sprintf("%d Content-Length fields", len(cl))
	}
	bodyLen := -1 // no framing
	if len(cl) == 1 {
		n, err := strconv.ParseInt(cl[0], 10, 64)
		if err != nil || n < 0 || strings.TrimLeft(cl[0], "0123456789") != "" {
			return fmt.Sprintf("invalid Content-Length %q", cl[0])
		}
		if n > 0 && (method == "GET" || method == "HEAD") {
			return "Content-Length body on " + method
		}
		if int64(len(body)) != n {
			return fmt.Sprintf("body is %d bytes, Content-Length says %d", len(body), n)
		}
		bodyLen = int(n)
	}
	if len(te) > 0 {
		cs := codings(te)
		chunked := 0
		for _, c := range cs {
			if c == "chunked" {
				chunked++
			}
		}
		if len(cs) == 0 || cs[len(cs)-1] != "chunked" || chunked != 1 {
			return fmt.Sprintf("Transfer-Encoding %q does not end in a single chunked", strings.Join(te, ", "))
		}
		if version == "HTTP/1.0" {
			return "Transfer-Encoding on HTTP/1.0"
		}
		if method == "GET" || method == "HEAD" {
			return "Transfer-Encoding on " + method
		}
		n, ok, err := chunkedLen(body)
		if err != nil || !ok || n != len(body) {
			return "chunked body is malformed or does not end where the request does"
		}
		bodyLen = n
	}
	if bodyLen < 0 && len(body) > 0 {
		return fmt.Sprintf("%d body bytes without framing", len(body))
	}
	return ""
}

// cleanTarget reports whether a request-target has only visible ASCII.
func cleanTarget(t string) bool {
	if t == "" {
		return false
	}
	for i := 0; i < len(t); i++ {
		if t[i] <= ' ' || t[i] >= 0x7f {
			return false
		}
	}
	return true
}

// collapseDelims replaces each run of '-' and '_' with one '-'.
func collapseDelims(s string) string {
	var b strings.Builder
	inRun := false
	for i := 0; i < len(s); i++ {
		if s[i] == '-' || s[i] == '_' {
			if !inRun {
				b.WriteByte('-')
			}
			inRun = true
			continue
		}
		inRun = false
		b.WriteByte(s[i])
	}
	return b.String()
}

// settle polls rec until two polls settleStep apart agree on the number and
// sizes of requests, for at most settleMax, and returns the last poll.
func settle(rec Recorder) [][]byte {
	prev := rec.Requests()
	t := time.NewTimer(settleStep)
	defer t.Stop()
	for waited := settleStep; ; waited += settleStep {
		<-t.C
		cur := rec.Requests()
		if sameShape(prev, cur) || waited >= settleMax {
			return cur
		}
		prev = cur
		t.Reset(settleStep)
	}
}

func sameShape(a, b [][]byte) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if len(a[i]) != len(b[i]) {
			return false
		}
	}
	return true
}

// Summary reports verdicts as a table of safe/total per tier, then every
// unsafe case with its reason, then what happened to the Acceptable
// (recorded-only) cases, then the skipped ones.
func Summary(vs []Verdict) string {
	type count struct{ safe, total, skipped int }
	counts := make(map[Tier]*count)
	for _, t := range tierOrder {
		counts[t] = &count{}
	}
	var unsafe, acceptable, skipped []string
	for _, v := range vs {
		cn := counts[v.Case.Tier]
		if cn == nil {
			cn = &count{}
			counts[v.Case.Tier] = cn
		}
		line := fmt.Sprintf("  %s %s: %s", v.Case.File, printable(v.Case.Name), v.Why)
		switch {
		case v.Skipped:
			cn.skipped++
			skipped = append(skipped, line)
			continue
		case v.Case.Tier == Acceptable:
			acceptable = append(acceptable, line)
		case !v.Safe:
			unsafe = append(unsafe, fmt.Sprintf("  [%s] %s %s (%s): %s",
				v.Case.Tier, v.Case.File, printable(v.Case.Name), v.Case.Reason, v.Why))
		}
		cn.total++
		if v.Safe {
			cn.safe++
		}
	}
	var b strings.Builder
	tw := tabwriter.NewWriter(&b, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "tier\tsafe/total\tskipped")
	for _, t := range tierOrder {
		cn := counts[t]
		if t == Acceptable {
			fmt.Fprintf(tw, "%s\t(recorded only) %d\t%d\n", t, cn.total, cn.skipped)
			continue
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%d\n", t, cn.safe, cn.total, cn.skipped)
	}
	tw.Flush()
	section := func(title string, lines []string) {
		if len(lines) == 0 {
			return
		}
		fmt.Fprintf(&b, "%s (%d):\n", title, len(lines))
		for _, l := range lines {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	section("unsafe", unsafe)
	section("acceptable, recorded only", acceptable)
	section("skipped", skipped)
	return b.String()
}

// printable quotes s when it holds anything but printable characters.
func printable(s string) string {
	for _, r := range s {
		if !unicode.IsPrint(r) {
			return strconv.Quote(s)
		}
	}
	return "'" + s + "'"
}
