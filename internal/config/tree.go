package config

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
)

// This file turns JSON or YAML bytes into a small, ordered, format-neutral
// tree (value). The schema walker in schema.go then checks that tree against
// the schema and collects every problem at once. Decoding into a generic tree
// instead of Go structs is what lets the loader report all unknown keys and
// type errors together, with their paths, and detect duplicate keys (which
// encoding/json would silently accept, keeping the last one).

// kind is the JSON-ish type of a tree node.
type kind uint8

const (
	kindNull kind = iota
	kindBool
	kindNumber
	kindString
	kindList
	kindObject
)

func (k kind) String() string {
	switch k {
	case kindNull:
		return "null"
	case kindBool:
		return "boolean"
	case kindNumber:
		return "number"
	case kindString:
		return "string"
	case kindList:
		return "list"
	case kindObject:
		return "object"
	}
	return "unknown"
}

// value is one node of a decoded document. Objects keep their keys in
// document order so that problems are reported deterministically.
type value struct {
	kind  kind
	b     bool     // kindBool
	s     string   // kindString: the string; kindNumber: literal accepted by strconv.ParseFloat
	items []*value // kindList
	keys  []string // kindObject, parallel to vals
	vals  []*value // kindObject
}

func strValue(s string) *value    { return &value{kind: kindString, s: s} }
func numValue(s string) *value    { return &value{kind: kindNumber, s: s} }
func objValue() *value            { return &value{kind: kindObject} }
func listValue(v []*value) *value { return &value{kind: kindList, items: v} }

// lookup returns the value stored under key, or nil.
func (v *value) lookup(key string) *value {
	if v == nil || v.kind != kindObject {
		return nil
	}
	for i, k := range v.keys {
		if k == key {
			return v.vals[i]
		}
	}
	return nil
}

// set replaces the value under key, or appends it.
func (v *value) set(key string, val *value) {
	for i, k := range v.keys {
		if k == key {
			v.vals[i] = val
			return
		}
	}
	v.keys = append(v.keys, key)
	v.vals = append(v.vals, val)
}

// describe renders a value for an error message: scalars with their value,
// containers by type only.
func (v *value) describe() string {
	switch v.kind {
	case kindString:
		return "string " + strconv.Quote(clip(v.s))
	case kindNumber:
		return "number " + clip(v.s)
	case kindBool:
		return "boolean " + strconv.FormatBool(v.b)
	}
	return v.kind.String()
}

// clip shortens s for inclusion in a message, so that a hostile or binary
// value cannot produce a megabyte-long error line.
func clip(s string) string {
	const max = 64
	if len(s) <= max {
		return s
	}
	return s[:max] + "..."
}

// childPath returns the path of key inside the object at parent. Keys that
// are not plain identifiers (for example header names containing dots) are
// quoted: health_check.headers["X.Y"].
func childPath(parent, key string) string {
	plain := key != ""
	for i := 0; i < len(key); i++ {
		c := key[i]
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9') {
			plain = false
			break
		}
	}
	if !plain {
		return parent + "[" + strconv.Quote(clip(key)) + "]"
	}
	if parent == "" {
		return key
	}
	return parent + "." + key
}

func indexPath(parent string, i int) string {
	return parent + "[" + strconv.Itoa(i) + "]"
}

// decodeJSON parses exactly one JSON value from data. Duplicate keys are
// added to c as problems; syntax errors are returned as an error that says
// where (line and column) the parser stopped. A document of nothing but
// white space decodes as nil.
func decodeJSON(data []byte, c *checker) (*value, error) {
	data = bytes.TrimPrefix(data, []byte("\xef\xbb\xbf")) // UTF-8 byte order mark
	if len(bytes.TrimLeft(data, " \t\r\n")) == 0 {
		return nil, nil
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber()
	p := jsonParser{dec: dec, c: c, data: data}
	root, err := p.parse("", 0)
	if err != nil {
		return nil, jsonError(data, dec.InputOffset(), err)
	}
	// Exactly one top-level value: anything but whitespace after it is an error.
	end := dec.InputOffset()
	if end >= 0 && end <= int64(len(data)) {
		rest := data[end:]
		if trimmed := bytes.TrimLeft(rest, " \t\r\n"); len(trimmed) > 0 {
			off := end + int64(len(rest)-len(trimmed))
			return nil, jsonError(data, off, errors.New("unexpected data after the top-level value"))
		}
	}
	return root, nil
}

type jsonParser struct {
	dec  *json.Decoder
	c    *checker
	data []byte
}

// line returns the 1-based line of byte offset off.
func (p *jsonParser) line(off int64) int {
	off = min(max(off, 0), int64(len(p.data)))
	return 1 + bytes.Count(p.data[:off], []byte("\n"))
}

// maxDepth bounds nesting in both formats; the schema is at most four levels
// deep, so this only stops pathological input.
const maxDepth = 100

func (p *jsonParser) parse(path string, depth int) (*value, error) {
	if depth > maxDepth {
		return nil, fmt.Errorf("nesting deeper than %d levels", maxDepth)
	}
	tok, err := p.dec.Token()
	if err != nil {
		return nil, err
	}
	switch t := tok.(type) {
	case json.Delim:
		switch t {
		case '{':
			obj := objValue()
			seen := make(map[string]bool)
			for p.dec.More() {
				ktok, err := p.dec.Token()
				if err != nil {
					return nil, err
				}
				key, ok := ktok.(string)
				if !ok { // encoding/json reports this itself; be defensive.
					return nil, errors.New("object key is not a string")
				}
				kp := childPath(path, key)
				keyEnd := p.dec.InputOffset()
				v, err := p.parse(kp, depth+1)
				if err != nil {
					return nil, err
				}
				if seen[key] {
					p.c.add(kp, "duplicate key (line %d)", p.line(keyEnd))
					continue
				}
				seen[key] = true
				obj.keys = append(obj.keys, key)
				obj.vals = append(obj.vals, v)
			}
			if _, err := p.dec.Token(); err != nil { // '}'
				return nil, err
			}
			return obj, nil
		case '[':
			list := listValue(nil)
			for p.dec.More() {
				v, err := p.parse(indexPath(path, len(list.items)), depth+1)
				if err != nil {
					return nil, err
				}
				list.items = append(list.items, v)
			}
			if _, err := p.dec.Token(); err != nil { // ']'
				return nil, err
			}
			return list, nil
		}
		return nil, fmt.Errorf("unexpected %q", rune(t))
	case string:
		return strValue(t), nil
	case json.Number:
		return numValue(t.String()), nil
	case bool:
		return &value{kind: kindBool, b: t}, nil
	case nil:
		return &value{kind: kindNull}, nil
	}
	return nil, fmt.Errorf("unexpected token %v", tok)
}

// jsonError adds "line L, column C" to a JSON decoding error. The position is
// computed from the byte offset the decoder reports; columns count bytes.
func jsonError(data []byte, off int64, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) {
		off = se.Offset
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		err = fmt.Errorf("unexpected end of input: %w", io.ErrUnexpectedEOF)
		off = int64(len(data))
	}
	if off < 0 {
		off = 0
	}
	if off > int64(len(data)) {
		off = int64(len(data))
	}
	line := 1 + bytes.Count(data[:off], []byte("\n"))
	col := int(off) - bytes.LastIndexByte(data[:off], '\n')
	return fmt.Errorf("line %d, column %d: %w", line, col, err)
}

// number parses a number literal from the tree. It returns false for NaN,
// infinities and literals out of the float64 range.
func number(lit string) (float64, bool) {
	f, err := strconv.ParseFloat(lit, 64)
	if err != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// integer parses a number literal that must be a whole number. Literals such
// as "3.0" or "1e3" are accepted when they denote an integer exactly.
func integer(lit string) (int64, bool) {
	if i, err := strconv.ParseInt(lit, 10, 64); err == nil {
		return i, true
	}
	if strings.ContainsAny(lit, ".eE") {
		f, ok := number(lit)
		// 2^53: beyond it float64 cannot represent every integer exactly.
		if ok && f == math.Trunc(f) && math.Abs(f) <= 1<<53 {
			return int64(f), true
		}
	}
	return 0, false
}
