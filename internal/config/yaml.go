package config

import (
	"bytes"
	"io"
	"strconv"

	"gopkg.in/yaml.v3"
)

// This file decodes YAML into the format-neutral tree of tree.go.

// maxYAMLNodes bounds the size of the tree built from a YAML document,
// counting every expansion of an alias. It defeats "billion laughs" documents
// (nested aliases that expand exponentially) while leaving plenty of room for
// real configurations: a pool of 1,000 backends needs about 5,000 nodes.
const maxYAMLNodes = 200_000

// decodeYAML parses a single YAML document. Aliases and merge keys ("<<") are
// expanded; duplicate keys, non-scalar keys and unsupported tags are added to
// c as problems. An empty document (nothing but comments, "---" or "~")
// decodes as nil.
func decodeYAML(data []byte, c *checker) (root *value, err error) {
	// yaml.v3 is known to panic on some malformed inputs (for example its
	// "unexpected tail comment event" internal error). The loader must never
	// crash the process on a bad file, so convert any panic into an error.
	defer func() {
		if r := recover(); r != nil {
			root, err = nil, yamlErrorAt(0, "malformed document (parser failure: %v)", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, nil // empty file, or only comments
		}
		return nil, yamlSyntaxError(data, err)
	}
	var extra yaml.Node
	if err := dec.Decode(&extra); err != io.EOF {
		if err != nil {
			return nil, yamlSyntaxError(data, err)
		}
		return nil, yamlErrorAt(extra.Line, "only one document is allowed (found a second one)")
	}
	y := yamlConv{c: c, active: make(map[*yaml.Node]bool)}
	n := &doc
	if n.Kind == yaml.DocumentNode {
		if len(n.Content) == 0 {
			return nil, nil
		}
		n = n.Content[0]
	}
	v, err := y.conv(n, "", 0)
	if err != nil {
		return nil, err
	}
	if v.kind == kindNull {
		return nil, nil // "---" alone, or "~"
	}
	return v, nil
}

type yamlConv struct {
	c      *checker
	nodes  int
	active map[*yaml.Node]bool // alias targets being expanded (cycle check)
}

func (y *yamlConv) conv(n *yaml.Node, path string, depth int) (*value, error) {
	if n == nil {
		return &value{kind: kindNull}, nil
	}
	if depth > maxDepth {
		return nil, yamlErrorAt(n.Line, "nesting deeper than %d levels", maxDepth)
	}
	y.nodes++
	if y.nodes > maxYAMLNodes {
		return nil, yamlErrorAt(0, "document too large (more than %d nodes after expanding aliases)", maxYAMLNodes)
	}
	switch n.Kind {
	case yaml.AliasNode:
		if n.Alias == nil {
			return nil, yamlErrorAt(n.Line, "unknown anchor %q", n.Value)
		}
		if y.active[n.Alias] {
			return nil, yamlErrorAt(n.Line, "anchor %q refers to itself", n.Value)
		}
		y.active[n.Alias] = true
		v, err := y.conv(n.Alias, path, depth+1)
		delete(y.active, n.Alias)
		return v, err
	case yaml.SequenceNode:
		list := listValue(make([]*value, 0, len(n.Content)))
		for i, item := range n.Content {
			ip := indexPath(path, i)
			y.c.lineOf(ip, item.Line)
			v, err := y.conv(item, ip, depth+1)
			if err != nil {
				return nil, err
			}
			list.items = append(list.items, v)
		}
		return list, nil
	case yaml.MappingNode:
		return y.mapping(n, path, depth)
	case yaml.ScalarNode:
		return y.scalar(n, path), nil
	case yaml.DocumentNode:
		return nil, yamlErrorAt(n.Line, "unexpected nested document")
	}
	return nil, yamlErrorAt(n.Line, "unsupported node")
}

func (y *yamlConv) mapping(n *yaml.Node, path string, depth int) (*value, error) {
	obj := objValue()
	seen := make(map[string]bool)
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		kn, vn := n.Content[i], n.Content[i+1]
		if kn.Kind == yaml.ScalarNode && kn.ShortTag() == "!!merge" {
			merges = append(merges, vn)
			continue
		}
		if kn.Kind != yaml.ScalarNode {
			y.c.addAt(kn.Line, path, "mapping keys must be plain strings")
			continue
		}
		key := kn.Value
		kp := childPath(path, key)
		y.c.lineOf(kp, kn.Line)
		v, err := y.conv(vn, kp, depth+1)
		if err != nil {
			return nil, err
		}
		if seen[key] {
			y.c.addAt(kn.Line, kp, "duplicate key (first on line %d)", y.c.lines[kp])
			continue
		}
		seen[key] = true
		obj.keys = append(obj.keys, key)
		obj.vals = append(obj.vals, v)
	}
	// Merge keys: explicit keys win over merged ones, and among several merged
	// mappings ("<<: [*a, *b]") the first one wins, as the YAML merge spec says.
	for _, m := range merges {
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, src := range srcs {
			mv, err := y.conv(src, path, depth+1)
			if err != nil {
				return nil, err
			}
			if mv.kind != kindObject {
				y.c.addAt(src.Line, path, "the value of a merge key (<<) must be a mapping or a list of mappings")
				continue
			}
			for i, k := range mv.keys {
				if !seen[k] {
					seen[k] = true
					obj.keys = append(obj.keys, k)
					obj.vals = append(obj.vals, mv.vals[i])
				}
			}
		}
	}
	return obj, nil
}

func (y *yamlConv) scalar(n *yaml.Node, path string) *value {
	switch tag := n.ShortTag(); tag {
	case "!!str", "!!timestamp":
		// Timestamps stay strings: no key of the schema is a date, and this
		// keeps "2024-01-01" from turning into something surprising.
		return strValue(n.Value)
	case "!!null":
		return &value{kind: kindNull}
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			y.c.addAt(n.Line, path, "invalid boolean %q", clip(n.Value))
			return strValue(n.Value)
		}
		return &value{kind: kindBool, b: b}
	case "!!int":
		var i any
		if err := n.Decode(&i); err == nil {
			switch i := i.(type) {
			case int:
				return numValue(strconv.Itoa(i))
			case int64:
				return numValue(strconv.FormatInt(i, 10))
			case uint64:
				return numValue(strconv.FormatUint(i, 10))
			case float64:
				return numValue(strconv.FormatFloat(i, 'g', -1, 64))
			}
		}
		y.c.addAt(n.Line, path, "invalid or out-of-range integer %q", clip(n.Value))
		return strValue(n.Value)
	case "!!float":
		var f float64
		if err := n.Decode(&f); err != nil {
			y.c.addAt(n.Line, path, "invalid number %q", clip(n.Value))
			return strValue(n.Value)
		}
		// NaN and ±Inf are kept; the schema rejects them where a number is needed.
		return numValue(strconv.FormatFloat(f, 'g', -1, 64))
	default:
		y.c.addAt(n.Line, path, "unsupported YAML tag %q", clip(tag))
		return strValue(n.Value)
	}
}
