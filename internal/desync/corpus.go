package desync

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"
	"unicode/utf8"

	"gopkg.in/yaml.v3"
)

// Tier is the classification the corpus expects for a request.
type Tier string

// The four tiers, from harmless to dangerous, as the corpus defines them.
const (
	Compliant  Tier = "Compliant"
	Acceptable Tier = "Acceptable"
	Ambiguous  Tier = "Ambiguous"
	Severe     Tier = "Severe"
)

// tierOrder is the order Summary reports tiers in.
var tierOrder = [...]Tier{Severe, Ambiguous, Compliant, Acceptable}

// Case is one request of the corpus.
type Case struct {
	// File is the base name of the YAML file the case comes from.
	File string
	// Name is the case's description with YAML escapes applied but not the
	// corpus' own; it is a label, not wire data. Names are not unique.
	Name string
	// Tier is the expected classification; Reason is the corpus' reason
	// code for it (e.g. "BothTeClPresent"), for reports only.
	Tier   Tier
	Reason string
	// Method, URI and Version are the decoded bytes of the request line.
	// Version "" means HTTP/0.9.
	Method, URI, Version string
	// Headers are the decoded (name, value) pairs, in order.
	Headers [][2]string
	// Raw is Render(c): the full request as written to the proxy.
	Raw []byte
	// Renderable is false when the case cannot be written as a request
	// line (the Compliant case "Empty URI"); Judge skips such cases.
	Renderable bool
}

// ErrNoCorpus is wrapped by CorpusDir's error when the corpus directory does
// not exist. Tests should skip, not fail, on it.
var ErrNoCorpus = errors.New("desync: http-desync-guardian corpus not found")

// corpusRel is where the corpus lives, relative to the repository root (the
// directory holding go.mod).
const corpusRel = "../shared/conformance/http-desync-guardian"

// skipFile is a debugging copy of one ambiguous.yaml case (corpus README).
const skipFile = "single-case.yaml"

// CorpusDir locates the corpus: it walks up from the working directory to
// the first directory containing go.mod and returns
// <that dir>/../shared/conformance/http-desync-guardian, cleaned. The error
// wraps ErrNoCorpus when that directory does not exist.
func CorpusDir() (string, error) {
	wd, err := os.Getwd()
	if err != nil {
		return "", fmt.Errorf("desync: working directory: %w", err)
	}
	root := wd
	for {
		if _, err := os.Stat(filepath.Join(root, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(root)
		if parent == root {
			return "", fmt.Errorf("desync: no go.mod above %s", wd)
		}
		root = parent
	}
	dir := filepath.Join(root, filepath.FromSlash(corpusRel))
	st, err := os.Stat(dir)
	if err != nil {
		return "", fmt.Errorf("%w at %s: %w", ErrNoCorpus, dir, err)
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%w: %s is not a directory", ErrNoCorpus, dir)
	}
	return dir, nil
}

// LoadOrSkip returns the de-duplicated corpus for a test. It skips the test
// when the corpus directory is missing and fails it when the corpus cannot
// be parsed.
func LoadOrSkip(tb testing.TB) []Case {
	tb.Helper()
	dir, err := CorpusDir()
	if errors.Is(err, ErrNoCorpus) {
		tb.Skipf("skipping: %v (the corpus is read from <repo>/%s at test time and never copied into the repo)", err, corpusRel)
	}
	if err != nil {
		tb.Fatal(err)
	}
	cases, err := Load(dir)
	if err != nil {
		tb.Fatal(err)
	}
	return cases
}

// Load parses every *.yaml file in dir except single-case.yaml, in file
// name order, and drops cases whose tier and decoded request equal an
// earlier case's. Each returned case has Raw and Renderable filled in.
func Load(dir string) ([]Case, error) {
	files, err := filepath.Glob(filepath.Join(dir, "*.yaml"))
	if err != nil {
		return nil, fmt.Errorf("desync: %w", err)
	}
	sort.Strings(files)
	seen := make(map[string]bool)
	var out []Case
	n := 0
	for _, f := range files {
		if filepath.Base(f) == skipFile {
			continue
		}
		n++
		cs, err := loadFile(f)
		if err != nil {
			return nil, err
		}
		for _, c := range cs {
			k := c.key()
			if seen[k] {
				continue
			}
			seen[k] = true
			out = append(out, c)
		}
	}
	if n == 0 {
		return nil, fmt.Errorf("desync: no *.yaml case files in %s", dir)
	}
	return out, nil
}

// key identifies a case by what goes on the wire plus its expected tier.
func (c Case) key() string {
	var b strings.Builder
	b.WriteString(string(c.Tier))
	for _, s := range []string{c.Method, c.URI, c.Version} {
		b.WriteByte(0)
		b.WriteString(strconv.Quote(s))
	}
	for _, h := range c.Headers {
		b.WriteByte(0)
		b.WriteString(strconv.Quote(h[0]))
		b.WriteByte(':')
		b.WriteString(strconv.Quote(h[1]))
	}
	return b.String()
}

// fileDecoder turns one YAML file into cases. It keeps the source lines so
// that double-quoted scalars can be re-decoded with byte-valued \x escapes.
type fileDecoder struct {
	name  string
	lines [][]byte
}

func loadFile(path string) ([]Case, error) {
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("desync: %w", err)
	}
	d := &fileDecoder{name: filepath.Base(path), lines: bytes.Split(src, []byte("\n"))}
	var doc yaml.Node
	if err := yaml.Unmarshal(src, &doc); err != nil {
		return nil, fmt.Errorf("desync: %s: %w", d.name, err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("desync: %s: top level is not a list of cases", d.name)
	}
	var out []Case
	for i, item := range doc.Content[0].Content {
		c, err := d.decodeCase(item)
		if err != nil {
			return nil, fmt.Errorf("desync: %s: case %d (line %d): %w", d.name, i, item.Line, err)
		}
		out = append(out, c)
	}
	return out, nil
}

// mapping returns the values of a YAML mapping by key.
func mapping(n *yaml.Node) (map[string]*yaml.Node, error) {
	if n.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("line %d: not a mapping", n.Line)
	}
	m := make(map[string]*yaml.Node, len(n.Content)/2)
	for i := 0; i+1 < len(n.Content); i += 2 {
		m[n.Content[i].Value] = n.Content[i+1]
	}
	return m, nil
}

func (d *fileDecoder) decodeCase(n *yaml.Node) (Case, error) {
	m, err := mapping(n)
	if err != nil {
		return Case{}, err
	}
	c := Case{File: d.name}
	if c.Name, err = d.field(m, "name", false); err != nil {
		return c, err
	}
	for _, f := range []struct {
		key string
		dst *string
	}{{"method", &c.Method}, {"uri", &c.URI}, {"version", &c.Version}} {
		if *f.dst, err = d.field(m, f.key, true); err != nil {
			return c, fmt.Errorf("%q: %w", c.Name, err)
		}
	}
	if h := m["headers"]; h != nil && h.Tag != "!!null" {
		if h.Kind != yaml.SequenceNode {
			return c, fmt.Errorf("%q: headers: not a list", c.Name)
		}
		for _, hn := range h.Content {
			hm, err := mapping(hn)
			if err != nil {
				return c, fmt.Errorf("%q: header: %w", c.Name, err)
			}
			name, err := d.field(hm, "name", true)
			if err != nil {
				return c, fmt.Errorf("%q: header: %w", c.Name, err)
			}
			value, err := d.field(hm, "value", true)
			if err != nil {
				return c, fmt.Errorf("%q: header %q: %w", c.Name, name, err)
			}
			c.Headers = append(c.Headers, [2]string{name, value})
		}
	}
	exp := m["expected"]
	if exp == nil {
		return c, fmt.Errorf("%q: missing expected", c.Name)
	}
	em, err := mapping(exp)
	if err != nil {
		return c, fmt.Errorf("%q: expected: %w", c.Name, err)
	}
	tier, err := d.field(em, "tier", false)
	if err != nil {
		return c, fmt.Errorf("%q: expected: %w", c.Name, err)
	}
	switch c.Tier = Tier(tier); c.Tier {
	case Compliant, Acceptable, Ambiguous, Severe:
	default:
		return c, fmt.Errorf("%q: unknown tier %q", c.Name, tier)
	}
	if r := em["reason"]; r != nil {
		c.Reason = r.Value
	}
	c.Renderable = c.Method != "" && c.URI != ""
	c.Raw = Render(c)
	return c, nil
}

// field decodes the scalar under key: the YAML level always, and the
// corpus' backslash escapes too when wire is set.
func (d *fileDecoder) field(m map[string]*yaml.Node, key string, wire bool) (string, error) {
	n := m[key]
	if n == nil {
		return "", fmt.Errorf("missing %s", key)
	}
	if n.Kind != yaml.ScalarNode {
		return "", fmt.Errorf("%s (line %d) is not a scalar", key, n.Line)
	}
	s := n.Value
	if n.Style&yaml.DoubleQuotedStyle != 0 {
		var err error
		if s, err = d.doubleQuoted(n); err != nil {
			return "", fmt.Errorf("%s: %w", key, err)
		}
	}
	if !wire {
		return s, nil
	}
	u, err := unescape(s)
	if err != nil {
		return "", fmt.Errorf("%s (line %d): %w", key, n.Line, err)
	}
	return u, nil
}

// doubleQuoted re-decodes a double-quoted scalar from the source so that
// \xHH yields the octet 0xHH (yaml.v3 yields the UTF-8 encoding of U+00HH).
// It cross-checks its result against yaml.v3's, so a construct it does not
// understand is an error rather than a silently different string.
func (d *fileDecoder) doubleQuoted(n *yaml.Node) (string, error) {
	if n.Line < 1 || n.Line > len(d.lines) {
		return "", fmt.Errorf("line %d out of range", n.Line)
	}
	line := d.lines[n.Line-1]
	// yaml.v3 columns count characters, not bytes.
	off := 0
	for i := 1; i < n.Column && off < len(line); i++ {
		_, size := utf8.DecodeRune(line[off:])
		off += size
	}
	if off >= len(line) || line[off] != '"' {
		return "", fmt.Errorf("line %d column %d: no opening quote", n.Line, n.Column)
	}
	octets, text, err := decodeDoubleQuoted(line[off+1:])
	if err != nil {
		return "", fmt.Errorf("line %d: %w", n.Line, err)
	}
	if text != n.Value {
		return "", fmt.Errorf("line %d: re-decoded %q, yaml.v3 has %q", n.Line, text, n.Value)
	}
	return octets, nil
}

// decodeDoubleQuoted decodes the body of a one-line YAML double-quoted
// scalar (src starts after the opening quote) up to the closing quote. It
// returns the string with \xHH as the octet 0xHH, and the string with \xHH
// as the code point U+00HH (YAML 1.2 semantics) for cross-checking.
func decodeDoubleQuoted(src []byte) (octets, text string, err error) {
	var ob, tb strings.Builder
	both := func(s string) { ob.WriteString(s); tb.WriteString(s) }
	for i := 0; i < len(src); i++ {
		ch := src[i]
		switch ch {
		case '"':
			return ob.String(), tb.String(), nil
		case '\r', '\n':
			return "", "", errors.New("multi-line double-quoted scalars are not supported")
		case '\\':
		default:
			ob.WriteByte(ch)
			tb.WriteByte(ch)
			continue
		}
		i++
		if i >= len(src) {
			return "", "", errors.New("backslash at end of line")
		}
		e := src[i]
		if s, ok := yamlNamedEscapes[e]; ok {
			both(s)
			continue
		}
		var width int
		switch e {
		case 'x':
			width = 2
		case 'u':
			width = 4
		case 'U':
			width = 8
		default:
			return "", "", fmt.Errorf("unknown YAML escape \\%c", e)
		}
		if i+width >= len(src) {
			return "", "", fmt.Errorf("short \\%c escape", e)
		}
		v, perr := strconv.ParseUint(string(src[i+1:i+1+width]), 16, 32)
		if perr != nil {
			return "", "", fmt.Errorf("bad \\%c escape %q", e, src[i+1:i+1+width])
		}
		i += width
		if e == 'x' {
			ob.WriteByte(byte(v))
		} else {
			ob.WriteRune(rune(v))
		}
		tb.WriteRune(rune(v))
	}
	return "", "", errors.New("no closing quote on the line")
}

// yamlNamedEscapes are the YAML 1.2 double-quoted escapes other than the
// numeric ones (YAML 1.2.2 section 5.7).
var yamlNamedEscapes = map[byte]string{
	'0': "\x00", 'a': "\a", 'b': "\b", 't': "\t", '\t': "\t", 'n': "\n",
	'v': "\v", 'f': "\f", 'r': "\r", 'e': "\x1b", ' ': " ", '"': "\"",
	'/': "/", '\\': "\\", 'N': "\u0085", '_': "\u00a0", 'L': "\u2028",
	'P': "\u2029",
}

// unescape applies the corpus' own escaping level, which matters for plain
// and single-quoted YAML scalars (e.g. uri: /foo/bar\t/baz) and for
// backslashes that survive YAML (\\\" in a double-quoted scalar). \xHH is
// the octet 0xHH; \r \n \t \b \f \v \a and \0 are the C control characters;
// a backslash before any other byte yields that byte (so \\ is a backslash
// and \" a quote).
func unescape(s string) (string, error) {
	if !strings.Contains(s, `\`) {
		return s, nil
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] != '\\' {
			b.WriteByte(s[i])
			continue
		}
		i++
		if i >= len(s) {
			return "", errors.New("trailing backslash")
		}
		switch e := s[i]; e {
		case 'x':
			if i+3 > len(s) {
				return "", errors.New(`short \x escape`)
			}
			v, err := strconv.ParseUint(s[i+1:i+3], 16, 8)
			if err != nil {
				return "", fmt.Errorf(`bad \x escape %q`, s[i+1:i+3])
			}
			b.WriteByte(byte(v))
			i += 2
		case 'r':
			b.WriteByte('\r')
		case 'n':
			b.WriteByte('\n')
		case 't':
			b.WriteByte('\t')
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'v':
			b.WriteByte('\v')
		case 'a':
			b.WriteByte('\a')
		case '0':
			b.WriteByte(0)
		default:
			b.WriteByte(e)
		}
	}
	return b.String(), nil
}
