//go:build race

package proxy

// raceEnabled: under the race detector sync.Pool drops a random share of
// what is put back, so allocation counts say nothing about the proxy.
const raceEnabled = true
