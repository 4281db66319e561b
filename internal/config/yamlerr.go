package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"gopkg.in/yaml.v3"
)

// yamlError is a YAML document that cannot be read, at a 1-based line (0
// when the line is not known).
type yamlError struct {
	line int
	msg  string
}

func (e *yamlError) Error() string {
	if e.line == 0 {
		return "yaml: " + e.msg
	}
	return "line " + strconv.Itoa(e.line) + ": " + e.msg
}

// yamlErrorAt is a yamlError with a message built from format and args.
func yamlErrorAt(line int, format string, args ...any) error {
	return &yamlError{line: line, msg: fmt.Sprintf(format, args...)}
}

// yamlSyntaxError turns an error of yaml.v3's parser on data into a
// yamlError at the line where the problem is.
//
// yaml.v3 reports the line where the enclosing construct began when it knows
// one ("line 1: did not find expected '-' indicator" for a bad indentation on
// line 4, because the list began on line 1), and no line at all for some
// errors ("unknown anchor 'x' referenced"). The line of the problem itself is
// the first line at which the document, cut after that line, fails with the
// same message: everything before the problem parses, and every cut after it
// includes it. Cuts are tried by bisection: about log2(lines) parses, on the
// error path only, and only for documents of up to maxYAMLSearch bytes.
func yamlSyntaxError(data []byte, err error) error {
	reported, msg := splitYAMLError(err.Error())
	if len(data) > maxYAMLSearch {
		return &yamlError{line: reported, msg: msg}
	}
	var ends []int // ends[i] is the offset just past line i+1
	for i, c := range data {
		if c == '\n' {
			ends = append(ends, i+1)
		}
	}
	if len(ends) == 0 || ends[len(ends)-1] != len(data) {
		ends = append(ends, len(data))
	}
	failsAt := func(line int) bool {
		e := yamlParseError(data[:ends[line-1]])
		if e == nil {
			return false
		}
		_, m := splitYAMLError(e.Error())
		return m == msg
	}
	lo, hi := 1, len(ends) // failsAt(len(ends)) holds: it is the whole document
	for lo < hi {
		mid := lo + (hi-lo)/2
		if failsAt(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	if !failsAt(lo) { // not the parser's error after all: keep what it said
		return &yamlError{line: reported, msg: msg}
	}
	return &yamlError{line: lo, msg: msg}
}

// splitYAMLError splits "yaml: line 7: did not find expected key" into 7 and
// the message (line 0 when there is none).
func splitYAMLError(s string) (int, string) {
	s = strings.TrimPrefix(s, "yaml: ")
	if rest, ok := strings.CutPrefix(s, "line "); ok {
		if num, msg, ok := strings.Cut(rest, ": "); ok {
			if n, err := strconv.Atoi(num); err == nil {
				return n, msg
			}
		}
	}
	return 0, s
}

// yamlParseError returns the first error of yaml.v3's parser on data, over
// every document in it.
func yamlParseError(data []byte) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("parser failure: %v", r)
		}
	}()
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for range maxYAMLDocuments {
		var n yaml.Node
		if err := dec.Decode(&n); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
	}
	return nil
}

// maxYAMLSearch bounds the documents whose error line yamlSyntaxError looks
// for, so that the search takes well under a second: a configuration of
// 1,000 backends is about 50 KB, and the search of a 900 KB document (20
// parses of up to 0.15 s each) took 2.5 s.
const maxYAMLSearch = 256 << 10

// maxYAMLDocuments bounds yamlParseError's loop; a configuration has one
// document, and the second is refused already.
const maxYAMLDocuments = 2
