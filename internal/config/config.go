package config

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Overrides are command-line flags that override file values, or replace the
// file entirely (FromFlags). A nil field means the flag was not given.
//
// Overrides are applied to the decoded document before validation, so a bad
// flag value is checked exactly like a bad file value; its problem is
// reported with the flag's name as its path (for example "-strategy", or
// "-backends[1]" for the second URL of -backends).
type Overrides struct {
	Listen   *string // -listen: listen_addr
	Strategy *string // -strategy: strategy
	// HealthCheckInterval (-health-check-interval) is a duration string. It
	// sets health_check.interval when the file has a health_check object and
	// health_check_interval otherwise.
	HealthCheckInterval *string
	MaxFailCount        *int // -max-fail-count: max_fail_count
	// Backends (-backends) is a comma-separated list of backend URLs, each
	// with weight 1. It replaces the file's backends list.
	Backends *string
	Admin    *string // -admin: admin_addr ("" turns the admin listener off)
}

// Problem is one thing wrong with a configuration.
type Problem struct {
	// Path locates the offending value: "backends[1].weight",
	// "health_check.interval", or "" for the document itself. A value given
	// by a command-line flag is located by the flag: "-strategy".
	Path string
	// Msg says what is wrong, usually with the value that was found.
	Msg string
	// Line is the 1-based line of the value in a YAML document: the line of
	// its key or list item, or for a missing key the line of the object
	// that lacks it. It is 0 when unknown: in JSON documents (often a
	// single line), for a value given by a flag, or for a key missing at
	// the top level.
	Line int
}

// String renders the problem as "config: PATH: MSG", "config: line N: PATH:
// MSG" when its line is known, or "-FLAG: MSG" for a value given by a flag.
func (p Problem) String() string {
	var b strings.Builder
	if !isFlagPath(p.Path) {
		b.WriteString("config: ")
	}
	if p.Line > 0 {
		b.WriteString("line " + strconv.Itoa(p.Line) + ": ")
	}
	if p.Path != "" {
		b.WriteString(p.Path + ": ")
	}
	b.WriteString(p.Msg)
	return b.String()
}

func isFlagPath(path string) bool { return strings.HasPrefix(path, "-") }

// ValidationError lists every problem found in a configuration, in the order
// they were found (the schema's order; unknown keys of an object come after
// its known keys, in document order).
type ValidationError struct {
	Problems []Problem
}

// Error returns one line per problem, such as
// "config: backends[1].weight: must be >= 1, got 0".
func (e *ValidationError) Error() string {
	lines := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		lines[i] = p.String()
	}
	return strings.Join(lines, "\n")
}

// Load reads and validates the configuration file at path, applying ov (which
// may be nil). The format follows the extension: .json, .yaml or .yml.
//
// A file that cannot be read or parsed yields an error naming the file (and,
// for syntax errors, where: "line 3, column 14" in JSON, the line of the
// problem in YAML, as in "config: line 7: MSG (in FILE)"). A file that parses
// but breaks the schema yields a *ValidationError listing every problem; so
// does an empty file (white space, or in YAML only comments, "---" or "~"),
// with the one problem "empty configuration file". A relative
// admin_token_file is resolved against the directory of path.
func Load(path string, ov *Overrides) (*Config, error) {
	var format string
	switch ext := strings.ToLower(filepath.Ext(path)); ext {
	case ".json":
		format = "json"
	case ".yaml", ".yml":
		format = "yaml"
	default:
		if ext == "" {
			return nil, fmt.Errorf("config: %s: file name has no extension; want .json, .yaml or .yml", path)
		}
		return nil, fmt.Errorf("config: %s: unsupported extension %q; want .json, .yaml or .yml", path, ext)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err) // *PathError names the file
	}
	return parse(data, format, path, filepath.Dir(path), ov)
}

// Parse validates a configuration held in memory. format is "json" or "yaml"
// ("yml" is accepted too). ov may be nil. A relative admin_token_file is
// resolved against the working directory.
func Parse(data []byte, format string, ov *Overrides) (*Config, error) {
	switch format {
	case "json", "yaml":
	case "yml":
		format = "yaml"
	default:
		return nil, fmt.Errorf(`config: unsupported format %q; want "json" or "yaml"`, format)
	}
	return parse(data, format, "", "", ov)
}

// FromFlags builds a configuration from defaults and ov alone, for running
// without a file. When ov.Backends is nil the backends are
// http://localhost:8081, http://localhost:8082 and http://localhost:8083.
func FromFlags(ov *Overrides) (*Config, error) {
	var o Overrides
	if ov != nil {
		o = *ov
	}
	if o.Backends == nil {
		def := defaultBackends
		o.Backends = &def
	}
	c := &checker{}
	return finish(objValue(), c, "", &o)
}

func parse(data []byte, format, name, baseDir string, ov *Overrides) (*Config, error) {
	c := &checker{}
	var root *value
	var err error
	if format == "json" {
		root, err = decodeJSON(data, c)
	} else {
		root, err = decodeYAML(data, c)
	}
	if err != nil {
		var ye *yamlError
		if errors.As(err, &ye) && ye.line > 0 {
			// "config: line 7: ...", like the problems of a YAML file.
			if name != "" {
				return nil, fmt.Errorf("config: %w (in %s)", err, name)
			}
			return nil, fmt.Errorf("config: %w", err)
		}
		if name == "" {
			name = format
		}
		return nil, fmt.Errorf("config: parse %s: %w", name, err)
	}
	if root == nil {
		// Most likely a truncated write or the wrong file; flags cannot
		// stand in for it.
		return nil, &ValidationError{Problems: []Problem{{Msg: "empty configuration file"}}}
	}
	return finish(root, c, baseDir, ov)
}

// finish applies overrides, validates and compiles. It never returns a
// partially valid Config: either every check passed, or the result is nil
// and the error lists every problem.
func finish(root *value, c *checker, baseDir string, ov *Overrides) (*Config, error) {
	decoded := len(c.problems) // problems of the file's syntax (duplicate keys, ...)
	flags := applyOverrides(root, ov)
	full := root.lookup("pools") != nil || root.lookup("listeners") != nil
	if full && ov != nil {
		// -listen and -backends are refused by the top-level check.
		if ov.Strategy != nil {
			c.add("strategy", "applies only to the flat form; set strategy on each pool")
		}
	}
	cfg := build(root, c, baseDir)
	c.problems = dedupe(c.problems)
	for i := decoded; i < len(c.problems); i++ {
		flags.relocate(&c.problems[i])
	}
	for i := range c.warnings {
		flags.relocate(&c.warnings[i])
	}
	for _, ps := range [][]Problem{c.problems, c.warnings} {
		for i := range ps {
			c.locate(&ps[i])
		}
	}
	if len(c.problems) > 0 {
		return nil, &ValidationError{Problems: c.problems}
	}
	cfg.Warnings = c.warnings
	return cfg, nil
}

// flagPaths maps the document path each override replaced to its flag.
type flagPaths map[string]string

// relocate gives a problem found in a value that a flag set the flag's name
// as its path: "-backends[1]" for "backends[1]".
func (f flagPaths) relocate(p *Problem) {
	for key, flag := range f {
		if rest, ok := strings.CutPrefix(p.Path, key); ok && (rest == "" || rest[0] == '.' || rest[0] == '[') {
			p.Path = flag + rest
			return
		}
	}
}

func applyOverrides(root *value, ov *Overrides) flagPaths {
	if ov == nil || root.kind != kindObject {
		return nil
	}
	f := flagPaths{}
	set := func(obj *value, path, key, flag string, v *value) {
		obj.set(key, v)
		f[path] = flag
	}
	if ov.Listen != nil {
		set(root, "listen_addr", "listen_addr", "-listen", strValue(*ov.Listen))
	}
	if ov.Strategy != nil {
		set(root, "strategy", "strategy", "-strategy", strValue(*ov.Strategy))
	}
	if ov.HealthCheckInterval != nil {
		if hc := root.lookup("health_check"); hc != nil && hc.kind == kindObject {
			set(hc, "health_check.interval", "interval", "-health-check-interval", strValue(*ov.HealthCheckInterval))
		} else {
			set(root, "health_check_interval", "health_check_interval", "-health-check-interval", strValue(*ov.HealthCheckInterval))
		}
	}
	if ov.Admin != nil {
		set(root, "admin_addr", "admin_addr", "-admin", strValue(*ov.Admin))
	}
	if ov.MaxFailCount != nil {
		set(root, "max_fail_count", "max_fail_count", "-max-fail-count", numValue(strconv.Itoa(*ov.MaxFailCount)))
	}
	if ov.Backends != nil {
		var items []*value
		if strings.TrimSpace(*ov.Backends) != "" {
			for u := range strings.SplitSeq(*ov.Backends, ",") {
				items = append(items, strValue(strings.TrimSpace(u)))
			}
		}
		set(root, "backends", "backends", "-backends", listValue(items))
	}
	return f
}

// dedupe drops repeated problems: a bad top-level default is read once per
// pool or listener that inherits it, and is reported once.
func dedupe(ps []Problem) []Problem {
	seen := make(map[Problem]bool, len(ps))
	out := ps[:0]
	for _, p := range ps {
		if !seen[p] {
			seen[p] = true
			out = append(out, p)
		}
	}
	return out
}
