//go:build race

package proxy_test

// raceEnabled: the race detector instruments (and allocates in) every request.
const raceEnabled = true
