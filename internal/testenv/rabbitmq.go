package testenv

import (
	"fmt"
	"net/url"
	"os/exec"
	"strings"
	"testing"
)

// VHost creates a RabbitMQ virtual host of t's own, deleted when t ends, and returns the
// broker URL that uses it. A whole shop can run in it with the shop's real exchange and
// queue names, beside other tests and beside a shop a developer runs. It uses rabbitmqctl
// (the tests run as root on the broker's machine).
func VHost(t testing.TB) string {
	t.Helper()
	if testing.Short() {
		t.Skip("needs RabbitMQ; skipped with -short")
	}
	name := Name(t)
	vhostURL, err := CreateVHost(RabbitMQURL(), name)
	if vhostURL != "" {
		t.Cleanup(func() { DeleteVHost(name) })
	}
	if err != nil {
		t.Fatal(err)
	}
	return vhostURL
}

// CreateVHost is VHost for commands (the bench): it creates the virtual host name, lets
// the guest user use it, and returns brokerURL with its path set to the vhost. The caller
// deletes it with DeleteVHost; on an error after the vhost was made, the URL is returned
// too, so that the caller can.
func CreateVHost(brokerURL, name string) (string, error) {
	u, err := url.Parse(brokerURL)
	if err != nil {
		return "", fmt.Errorf("RABBITMQ_URL: %w", err)
	}
	if _, err := rabbitmqctl("add_vhost", name); err != nil {
		return "", err
	}
	u.Path = "/" + name
	if _, err := rabbitmqctl("set_permissions", "-p", name, "guest", ".*", ".*", ".*"); err != nil {
		return u.String(), err
	}
	return u.String(), nil
}

// DeleteVHost deletes the virtual host name and everything in it; errors are ignored
// (it is cleanup).
func DeleteVHost(name string) { _ = exec.Command("rabbitmqctl", "delete_vhost", name).Run() }

// DropConnections closes every client connection to vhost, as a broker restart would, and
// returns how many it closed.
func DropConnections(t testing.TB, vhostURL string) int {
	t.Helper()
	n, err := CloseVHostConnections(vhostURL)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// CloseVHostConnections is DropConnections for commands: it closes every client
// connection to the vhost of vhostURL and returns how many it closed.
func CloseVHostConnections(vhostURL string) (int, error) {
	u, err := url.Parse(vhostURL)
	if err != nil {
		return 0, err
	}
	vhost := strings.TrimPrefix(u.Path, "/")
	out, err := rabbitmqctl("list_connections", "pid", "vhost", "-q", "--no-table-headers")
	if err != nil {
		return 0, err
	}
	n := 0
	for line := range strings.Lines(out) {
		if fields := strings.Fields(line); len(fields) == 2 && fields[1] == vhost {
			n++
		}
	}
	if n == 0 {
		return 0, nil
	}
	// One call for all of them: each rabbitmqctl starts an Erlang VM (a second or more).
	if _, err := rabbitmqctl("close_all_connections", "--vhost", vhost, "test drops connections"); err != nil {
		return 0, err
	}
	return n, nil
}

func rabbitmqctl(args ...string) (string, error) {
	out, err := exec.Command("rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("rabbitmqctl %s: %w: %s (is RabbitMQ running? start it with `rabbitmq-server -detached`)",
			strings.Join(args, " "), err, out)
	}
	return string(out), nil
}
