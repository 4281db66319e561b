package main

import (
	"bytes"
	"runtime"
	"strings"
	"testing"
)

func TestClampProcs(t *testing.T) {
	prev := runtime.GOMAXPROCS(0)
	t.Cleanup(func() { runtime.GOMAXPROCS(prev) })
	n := runtime.NumCPU()
	runtime.GOMAXPROCS(n + 1)
	if was := clampProcs(); was != n+1 || runtime.GOMAXPROCS(0) != n {
		t.Fatalf("clampProcs = %d, GOMAXPROCS = %d; want %d and %d", was, runtime.GOMAXPROCS(0), n+1, n)
	}
	if was := clampProcs(); was != 0 {
		t.Fatalf("second clampProcs = %d, want 0 (nothing to lower)", was)
	}
}

func TestVersionAndHelp(t *testing.T) {
	var out, errb bytes.Buffer
	if code := run([]string{"version"}, &out, &errb); code != 0 || !strings.HasPrefix(out.String(), "fulcrum ") {
		t.Fatalf("version: code %d, out %q", code, out.String())
	}
	out.Reset()
	if code := run([]string{"help"}, &out, &errb); code != 0 || !strings.Contains(out.String(), "fulcrum validate -config FILE") {
		t.Fatalf("help: code %d, out %q", code, out.String())
	}
}
