package admin

import (
	"fmt"
	"net/http"

	"fulcrum/internal/preview"
)

// Previewer is implemented by a Controller that can say what a reload would
// change: GET /admin/config and POST /admin/reload?dry_run=1 use it.
type Previewer interface {
	// ConfigModel returns the running configuration without its secrets
	// (they are salted fingerprints).
	ConfigModel() *preview.Model
	// DryRun loads the file a reload would load and lists what applying it
	// would change, applying nothing. Its error is the one a reload would
	// fail with; warnings are those of the new configuration.
	DryRun() (changes []preview.Change, warnings []string, err error)
}

// dryRunResult is the answer of POST /admin/reload?dry_run=1 for a file a
// reload would apply; dryRunRefusal for one it would refuse.
type dryRunResult struct {
	Valid    bool             `json:"valid"`
	Changes  []preview.Change `json:"changes"`
	Warnings []string         `json:"warnings"`
}

type dryRunRefusal struct {
	Valid bool   `json:"valid"`
	Error string `json:"error"`
}

// dryRun reports whether the request asks for a dry run: dry_run=1 or
// dry_run=true (0 and false ask for a real reload).
func dryRun(r *http.Request) (bool, error) {
	vs, ok := r.URL.Query()["dry_run"]
	if !ok {
		return false, nil
	}
	if len(vs) > 1 {
		return false, fmt.Errorf("dry_run: given %d times, want it once", len(vs))
	}
	switch vs[0] {
	case "1", "true":
		return true, nil
	case "0", "false":
		return false, nil
	}
	return false, fmt.Errorf("dry_run: want 1, true, 0 or false, got %q", vs[0])
}

func (s *Server) dryRun(w http.ResponseWriter, r *http.Request) {
	pv, ok := s.ctl.(Previewer)
	if !ok {
		writeError(w, http.StatusNotFound, "this server cannot preview a reload")
		return
	}
	changes, warnings, err := pv.DryRun()
	if err != nil {
		writeJSON(w, http.StatusBadRequest, dryRunRefusal{Error: err.Error()})
		return
	}
	if changes == nil {
		changes = []preview.Change{}
	}
	if warnings == nil {
		warnings = []string{}
	}
	writeJSON(w, http.StatusOK, dryRunResult{Valid: true, Changes: changes, Warnings: warnings})
}

func (s *Server) config(w http.ResponseWriter, r *http.Request) {
	pv, ok := s.ctl.(Previewer)
	if !ok {
		writeError(w, http.StatusNotFound, "this server does not export its configuration")
		return
	}
	writeJSON(w, http.StatusOK, pv.ConfigModel())
}
