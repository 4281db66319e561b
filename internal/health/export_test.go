package health

import (
	"context"

	"fulcrum/internal/config"
)

// ProbeOnce runs one check of t under cfg, as a target goroutine would,
// without touching t.State or the Reporter.
func (c *Checker) ProbeOnce(ctx context.Context, cfg config.HealthCheck, t *Target) (string, error) {
	return c.prober.probe(ctx, compile(cfg), t)
}
