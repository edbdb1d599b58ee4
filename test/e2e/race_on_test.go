//go:build race

package e2e

// raceBuild is true when this test binary was built with -race (as CI does);
// the proxy under test is then built with -race too.
const raceBuild = true
