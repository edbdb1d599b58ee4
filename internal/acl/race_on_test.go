//go:build race

package acl

// loadBound scales TestManyRules' one-second bound: the race detector
// makes YAML parsing several times slower.
const loadBound = 8
