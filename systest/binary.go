package systest

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

var (
	buildOnce sync.Once
	binary    string
	buildErr  error
	buildOut  []byte
)

// Binary builds the msdemo command once per test process and returns its path, for tests
// that run components as separate processes (to kill one, or to send it a signal).
func Binary(t testing.TB) string {
	t.Helper()
	buildOnce.Do(func() {
		dir, err := os.MkdirTemp("", "msdemo-bin-")
		if err != nil {
			buildErr = err
			return
		}
		binary = filepath.Join(dir, "msdemo")
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..")
		cmd := exec.Command("go", "build", "-o", binary, ".")
		cmd.Dir = root
		buildOut, buildErr = cmd.CombinedOutput()
	})
	if buildErr != nil {
		t.Fatalf("build msdemo: %v\n%s", buildErr, buildOut)
	}
	return binary
}
