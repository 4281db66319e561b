package config

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// checker collects problems, and warnings, in the order they are found.
type checker struct {
	problems []Problem
	warnings []Problem
	// lines maps the paths of a YAML document to the line of their key (or
	// list item); nil for JSON.
	lines map[string]int
}

func (c *checker) add(path, format string, args ...any) {
	c.problems = append(c.problems, problem(path, format, args...))
}

// addAt adds a problem known to be at line, which may differ from the line
// of path (a duplicate key, a key that is not a string).
func (c *checker) addAt(line int, path, format string, args ...any) {
	p := problem(path, format, args...)
	p.Line = line
	c.problems = append(c.problems, p)
}

// lineOf records the line of a path of a YAML document. The first line
// recorded for a path stays: a duplicate key does not move it, and keys
// merged in ("<<") are recorded after the explicit keys that win over them.
func (c *checker) lineOf(path string, line int) {
	if c.lines == nil {
		c.lines = make(map[string]int)
	}
	if _, ok := c.lines[path]; !ok {
		c.lines[path] = line
	}
}

// locate sets the line of a problem that has none from its path, or else
// from the closest enclosing path that has one: a missing key
// ("backends[0].url: required") is reported on the line of its object.
func (c *checker) locate(p *Problem) {
	if p.Line != 0 || len(c.lines) == 0 || isFlagPath(p.Path) {
		return
	}
	if l, ok := c.lines[p.Path]; ok {
		p.Line = l
		return
	}
	best := ""
	for path, l := range c.lines {
		if len(path) > len(best) && len(path) < len(p.Path) && strings.HasPrefix(p.Path, path) &&
			(p.Path[len(path)] == '.' || p.Path[len(path)] == '[') {
			best, p.Line = path, l
		}
	}
}

// warn records something that does not stop the configuration from loading
// but is probably not what its author meant.
func (c *checker) warn(path, format string, args ...any) {
	c.warnings = append(c.warnings, problem(path, format, args...))
}

func problem(path, format string, args ...any) Problem {
	msg := fmt.Sprintf(format, args...)
	// One line per problem, whatever a value or a file name contains.
	msg = strings.NewReplacer("\n", `\n`, "\r", `\r`).Replace(msg)
	return Problem{Path: path, Msg: msg}
}

// typeProblem reports that v at path is not of the wanted type.
func (c *checker) typeProblem(path, want string, v *value) {
	c.add(path, "must be %s, got %s", want, v.describe())
}

// str checks that v is a string.
func (c *checker) str(path string, v *value) (string, bool) {
	if v.kind != kindString {
		c.typeProblem(path, "a string", v)
		return "", false
	}
	return v.s, true
}

// boolean checks that v is a boolean.
func (c *checker) boolean(path string, v *value) (bool, bool) {
	if v.kind != kindBool {
		c.typeProblem(path, "true or false", v)
		return false, false
	}
	return v.b, true
}

// integer checks that v is a whole number within [lo, hi].
func (c *checker) integer(path string, v *value, lo, hi int64) (int64, bool) {
	if v.kind != kindNumber {
		c.typeProblem(path, "an integer", v)
		return 0, false
	}
	i, ok := integer(v.s)
	if !ok {
		if f, fok := number(v.s); fok && f == math.Trunc(f) {
			// A whole number too large for int64 (or for float64 precision).
			if f < 0 {
				c.add(path, "must be >= %d, got %s", lo, clip(v.s))
			} else {
				c.add(path, "must be <= %d, got %s", hi, clip(v.s))
			}
			return 0, false
		}
		c.add(path, "must be an integer, got %s", clip(v.s))
		return 0, false
	}
	return i, c.inRange(path, i, lo, hi)
}

func (c *checker) inRange(path string, i, lo, hi int64) bool {
	switch {
	case i < lo:
		c.add(path, "must be >= %d, got %d", lo, i)
		return false
	case i > hi:
		c.add(path, "must be <= %d, got %d", hi, i)
		return false
	}
	return true
}

// duration checks that v is a duration string such as "30s". Durations are
// never negative; positive additionally rejects zero.
func (c *checker) duration(path string, v *value, positive bool) (time.Duration, bool) {
	if v.kind == kindNumber && v.s == "0" {
		// A bare 0 is unambiguous ("read_timeout: 0" in YAML).
		if positive {
			c.add(path, "must be greater than 0, got 0")
			return 0, false
		}
		return 0, true
	}
	if v.kind != kindString {
		c.add(path, "must be a duration like \"30s\" or \"1m30s\", got %s (durations are strings with a unit)", v.describe())
		return 0, false
	}
	d, err := time.ParseDuration(v.s) // accepts "0" as the only unit-less value
	if err != nil {
		c.add(path, "must be a duration like \"30s\" or \"1m30s\", got %q", clip(v.s))
		return 0, false
	}
	if d < 0 {
		c.add(path, "must not be negative, got %q", clip(v.s))
		return 0, false
	}
	if positive && d == 0 {
		c.add(path, "must be greater than 0, got %q", clip(v.s))
		return 0, false
	}
	return d, true
}

// size checks that v is a byte size (see ParseSize) within [lo, hi].
func (c *checker) size(path string, v *value, lo, hi int64) (int64, bool) {
	var raw any
	switch v.kind {
	case kindNumber:
		i, ok := integer(v.s)
		if !ok {
			c.add(path, "must be a whole number of bytes, got %s", clip(v.s))
			return 0, false
		}
		raw = i
	case kindString:
		raw = v.s
	default:
		c.typeProblem(path, `a size like 65536, "64KiB" or "1MiB"`, v)
		return 0, false
	}
	n, err := ParseSize(raw)
	if err != nil {
		c.add(path, "%v", err)
		return 0, false
	}
	if n < lo {
		c.add(path, "must be at least %d bytes, got %d", lo, n)
		return 0, false
	}
	if n > hi {
		c.add(path, "must be at most %s, got %d", sizeBound(hi), n)
		return 0, false
	}
	return n, true
}

// sizeBound renders a limit for a message: "16MiB (16777216 bytes)" when a
// binary unit divides it, else "N bytes".
func sizeBound(n int64) string {
	for _, u := range []struct {
		name  string
		shift uint
	}{{"GiB", 30}, {"MiB", 20}, {"KiB", 10}} {
		if n >= 1<<u.shift && n%(1<<u.shift) == 0 {
			return fmt.Sprintf("%d%s (%d bytes)", n>>u.shift, u.name, n)
		}
	}
	return fmt.Sprintf("%d bytes", n)
}

// enum checks that v is one of the allowed strings.
func (c *checker) enum(path string, v *value, allowed []string) (string, bool) {
	s, ok := c.str(path, v)
	if !ok {
		return "", false
	}
	for _, a := range allowed {
		if s == a {
			return s, true
		}
	}
	c.add(path, "must be one of %s; got %q", quoteList(allowed), clip(s))
	return "", false
}

func quoteList(list []string) string {
	q := make([]string, len(list))
	for i, s := range list {
		q[i] = strconv.Quote(s)
	}
	return strings.Join(q, ", ")
}

// object is a cursor over one object of the tree. Every key the schema knows
// is fetched with take (or one of the typed getters built on it); done then
// reports every key that was never fetched as unknown, in document order,
// with a did-you-mean hint when a known key is close.
type object struct {
	c     *checker
	path  string
	v     *value // nil when the object is absent or not an object
	used  []bool
	known []string
	// origin gives the path of keys that came from elsewhere: a top-level
	// default merged into a pool or listener object (see inherit).
	origin map[string]string
}

// object starts a cursor for the value at path. A nil v means the key is
// absent, which is fine; any non-object value is a problem.
func (c *checker) object(path string, v *value) *object {
	o := &object{c: c, path: path}
	if v == nil {
		return o
	}
	if v.kind != kindObject {
		c.typeProblem(path, "an object", v)
		return o
	}
	o.v = v
	o.used = make([]bool, len(v.keys))
	return o
}

// present reports whether key was given, without fetching it.
func (o *object) present(key string) bool {
	return o.v.lookup(key) != nil
}

// take fetches key and marks it as known. It returns nil if key is absent.
func (o *object) take(key string) *value {
	o.known = append(o.known, key)
	if o.v == nil {
		return nil
	}
	for i, k := range o.v.keys {
		if k == key {
			o.used[i] = true
			return o.v.vals[i]
		}
	}
	return nil
}

func (o *object) at(key string) string {
	if p, ok := o.origin[key]; ok {
		return p
	}
	return childPath(o.path, key)
}

// done reports unknown keys.
func (o *object) done() {
	if o.v == nil {
		return
	}
	for i, k := range o.v.keys {
		if _, inherited := o.origin[k]; o.used[i] || inherited {
			continue
		}
		if s := suggest(k, o.known); s != "" {
			o.c.add(o.at(k), "unknown key (did you mean %q?)", s)
		} else {
			o.c.add(o.at(k), "unknown key")
		}
	}
}

// notAllowed fetches key and, if present, reports why it may not be used here.
func (o *object) notAllowed(key, why string) {
	if o.take(key) != nil {
		o.c.add(o.at(key), "%s", why)
	}
}

func (o *object) str(key, def string) (string, bool) {
	v := o.take(key)
	if v == nil {
		return def, true
	}
	return o.c.str(o.at(key), v)
}

func (o *object) boolean(key string, def bool) (bool, bool) {
	v := o.take(key)
	if v == nil {
		return def, true
	}
	return o.c.boolean(o.at(key), v)
}

// noMax is the upper bound of integers that have no natural limit. It keeps
// every value representable as an int on any platform.
const noMax = math.MaxInt32

func (o *object) integer(key string, def, lo, hi int64) (int, bool) {
	v := o.take(key)
	if v == nil {
		return int(def), true
	}
	i, ok := o.c.integer(o.at(key), v, lo, hi)
	return int(i), ok
}

func (o *object) duration(key string, def time.Duration, positive bool) (time.Duration, bool) {
	v := o.take(key)
	if v == nil {
		return def, true
	}
	return o.c.duration(o.at(key), v, positive)
}

func (o *object) size(key string, def, lo, hi int64) (int64, bool) {
	v := o.take(key)
	if v == nil {
		return def, true
	}
	return o.c.size(o.at(key), v, lo, hi)
}

func (o *object) enum(key, def string, allowed []string) (string, bool) {
	v := o.take(key)
	if v == nil {
		return def, true
	}
	return o.c.enum(o.at(key), v, allowed)
}

// suggest returns the known key closest to k, if it is close enough to be a
// plausible typo (edit distance at most 2, or 1 for very short keys).
func suggest(k string, known []string) string {
	best, bestD := "", 3
	if len(k) <= 3 {
		bestD = 2
	}
	for _, cand := range known {
		if d := editDistance(k, cand, bestD); d < bestD {
			best, bestD = cand, d
		}
	}
	if best != "" || len(k) < 4 {
		return best
	}
	// A truncated or extended key: "listen" for "listen_addr".
	for _, cand := range known {
		if len(cand) >= 4 && (strings.HasPrefix(cand, k) || strings.HasPrefix(k, cand)) &&
			(best == "" || len(cand) < len(best)) {
			best = cand
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b, or limit if it is
// at least limit (which keeps the cost bounded for long hostile keys).
func editDistance(a, b string, limit int) int {
	if d := len(a) - len(b); d >= limit || -d >= limit {
		return limit
	}
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			rowMin = min(rowMin, cur[j])
		}
		if rowMin >= limit {
			return limit
		}
		prev, cur = cur, prev
	}
	return min(prev[len(b)], limit)
}
