package testutil

import (
	"bytes"
	"strings"
	"sync"
)

// LogBuffer is a log sink that is safe for the goroutines of the code under
// test (slog handlers write to it from several at once).
type LogBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *LogBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

// String is everything written so far.
func (l *LogBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// Lines is everything written so far, one element per line.
func (l *LogBuffer) Lines() []string {
	return strings.Split(strings.TrimSuffix(l.String(), "\n"), "\n")
}
