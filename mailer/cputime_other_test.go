//go:build !unix

package mailer_test

import "time"

// processCPU is not measured here; benchmarks leave out their CPU figures.
func processCPU() time.Duration { return 0 }
