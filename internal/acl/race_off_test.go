//go:build !race

package acl

// loadBound: without the race detector, 10,000 rules load in under a second.
const loadBound = 1
