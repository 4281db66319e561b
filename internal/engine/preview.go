package engine

import "fulcrum/internal/preview"

// ConfigModel is the running configuration as internal/preview models it,
// secrets fingerprinted with a fresh salt (GET /admin/config).
func (e *Engine) ConfigModel() *preview.Model {
	return preview.FromConfig(e.Config(), preview.NewSalt())
}

// DryRun loads the configuration a reload would load and lists what
// applying it would change, without changing anything (POST
// /admin/reload?dry_run=1). It fails as Reload would for an invalid file,
// one that changes a key only a restart can change, or routes that do not
// compile; it does not try to bind new listen addresses. The warnings are
// those of the new configuration. It is not counted as a reload.
func (e *Engine) DryRun() (changes []preview.Change, warnings []string, err error) {
	if e.opt.Loader == nil {
		return nil, nil, errNoLoader
	}
	cur := e.Config()
	next, err := e.loadNext(cur)
	if err == nil {
		_, err = loadCerts(next) // what the reload would refuse
	}
	if err == nil {
		_, err = loadPoolTLS(next, nil)
	}
	if err != nil {
		return nil, nil, err
	}
	salt := preview.NewSalt()
	changes, err = preview.Diff(preview.FromConfig(cur, salt), preview.FromConfig(next, salt))
	if err != nil {
		return nil, nil, err // unreachable: one salt
	}
	for _, w := range next.Warnings {
		warnings = append(warnings, w.String())
	}
	return changes, warnings, nil
}
