package bench

import "os"

// mkdirTemp makes a directory for a benchmark store. Benchmark worlds live
// for the whole process, so they cannot use b.TempDir.
func mkdirTemp() (string, error) { return os.MkdirTemp("", "gatehouse-bench") }
