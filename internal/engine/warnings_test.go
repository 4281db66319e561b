package engine_test

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"

	"fulcrum/internal/config"
	"fulcrum/internal/engine"
	"fulcrum/internal/testutil"
)

// TestWarningsLogged: a configuration's warnings are logged when the engine
// is built (start-up) and when a reload applies it, and a reload's summary
// carries them after its first line.
func TestWarningsLogged(t *testing.T) {
	t.Parallel()
	bs := startBackends(t, "a", "b")
	path := filepath.Join(t.TempDir(), "fulcrum.json")
	writeFile(t, path, cfgJSON("", "round_robin", bs, []int{2, 1}))
	load := func() (*config.Config, error) { return config.Load(path, nil) }
	c, err := load()
	if err != nil {
		t.Fatal(err)
	}
	var logs testutil.LogBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	e, err := engine.New(c, engine.Options{Logger: log, Loader: load})
	if err != nil {
		t.Fatal(err)
	}
	e.Start(context.Background())
	defer e.Shutdown(context.Background())
	const want = `level=WARN msg="configuration warning" warning="config: strategy: \"round_robin\" ignores backend weights`
	if n := strings.Count(logs.String(), want); n != 1 {
		t.Fatalf("start-up: %d warning lines, want 1:\n%s", n, logs.String())
	}

	summary, err := e.Reload(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(summary, "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "reloaded: 2 backends") ||
		!strings.HasPrefix(lines[1], `warning: config: strategy: "round_robin" ignores backend weights`) ||
		!strings.Contains(lines[1], "weighted_round_robin") {
		t.Fatalf("summary %q, want the summary line and the warning", summary)
	}
	if n := strings.Count(logs.String(), want); n != 2 {
		t.Fatalf("after reload: %d warning lines, want 2:\n%s", n, logs.String())
	}

	// Without warnings the summary is one line and nothing more is logged.
	writeFile(t, path, cfgJSON("", "weighted_round_robin", bs, []int{2, 1}))
	if summary, err = e.Reload(context.Background()); err != nil || strings.Contains(summary, "\n") {
		t.Fatalf("Reload = %q, %v; want one line", summary, err)
	}
	if n := strings.Count(logs.String(), "configuration warning"); n != 2 {
		t.Fatalf("%d warning lines after a reload without warnings, want still 2", n)
	}
}
