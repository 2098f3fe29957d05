package testenv

import (
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
)

// A port is given to one process once; a reservation of a process that has exited is
// taken over.
func TestReservePort(t *testing.T) {
	addr, err := FreeLoopbackAddr()
	if err != nil {
		t.Fatal(err)
	}
	_, portText, _ := net.SplitHostPort(addr)
	port, _ := strconv.Atoi(portText)
	if reservePort(port) {
		t.Errorf("port %d given twice", port)
	}

	exited := exec.Command("true")
	if err := exited.Run(); err != nil {
		t.Fatal(err)
	}
	name := filepath.Join(portReservations, strconv.Itoa(port))
	if err := os.WriteFile(name, []byte(strconv.Itoa(exited.Process.Pid)), 0o666); err != nil {
		t.Fatal(err)
	}
	if !reservePort(port) {
		t.Errorf("port %d of an exited process: not taken over", port)
	}
}
