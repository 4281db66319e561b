package testutil

import (
	"fmt"
	"strconv"
	"strings"
)

// ParseKV reads a line of key=value pairs separated by single spaces, as
// slog's text handler and fulcrum's text access log write them: a value is
// bare, or quoted in Go syntax.
func ParseKV(line string) (map[string]string, error) {
	line = strings.TrimSuffix(line, "\n")
	m := map[string]string{}
	for line != "" {
		k, rest, ok := strings.Cut(line, "=")
		if !ok {
			return nil, fmt.Errorf("no key=value at %q", line)
		}
		v := rest
		if strings.HasPrefix(rest, `"`) {
			q, err := strconv.QuotedPrefix(rest)
			if err != nil {
				return nil, fmt.Errorf("bad quoted value at %q: %v", rest, err)
			}
			v, _ = strconv.Unquote(q)
			rest = rest[len(q):]
		} else if i := strings.IndexByte(rest, ' '); i >= 0 {
			v, rest = rest[:i], rest[i:]
		} else {
			rest = ""
		}
		if _, dup := m[k]; dup {
			return nil, fmt.Errorf("key %q twice", k)
		}
		m[k] = v
		line = strings.TrimPrefix(rest, " ")
	}
	return m, nil
}
