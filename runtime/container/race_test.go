//go:build race

package container

// The race-instrumented binary needs ~20 MiB as container init, above the 8 MiB
// limit the OOM test uses otherwise.
const raceEnabled = true
