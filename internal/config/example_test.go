package config_test

import (
	"errors"
	"fmt"

	"fulcrum/internal/config"
)

func ExampleParse() {
	cfg, err := config.Parse([]byte(`{
  "strategy": "weighted_round_robin",
  "backends": [{"url": "http://backend1:8081", "weight": 3}, "http://backend2:8082"]
}`), "json", nil)
	if err != nil {
		panic(err)
	}
	pool := cfg.Pools[0]
	fmt.Println(cfg.Listeners[0].Listen, pool.Strategy, pool.HealthCheck.Type, pool.HealthCheck.Interval)
	for _, b := range pool.Backends {
		fmt.Println(b.Host, b.Weight)
	}
	// Output:
	// :8080 weighted_round_robin tcp 30s
	// backend1:8081 3
	// backend2:8082 1
}

func ExampleValidationError() {
	_, err := config.Parse([]byte(`
backends:
  - url: http://backend1:8081
  - url: http://backend2:8082
    weight: 0
health_check:
  intervall: 5s
`), "yaml", nil)
	fmt.Println(err)

	var ve *config.ValidationError
	if errors.As(err, &ve) {
		fmt.Println(len(ve.Problems), "problems; first at", ve.Problems[0].Path)
	}
	// Output:
	// config: line 5: backends[1].weight: must be >= 1, got 0
	// config: line 7: health_check.intervall: unknown key (did you mean "interval"?)
	// 2 problems; first at backends[1].weight
}

func ExampleFromFlags() {
	strategy := "least_connections"
	cfg, err := config.FromFlags(&config.Overrides{Strategy: &strategy})
	if err != nil {
		panic(err)
	}
	fmt.Println(cfg.Pools[0].Strategy, len(cfg.Pools[0].Backends))
	// Output: least_connections 3
}
