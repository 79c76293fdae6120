//go:build !unix

package xlsx

import "time"

// cpuTime is not measured here.
func cpuTime() time.Duration { return 0 }
