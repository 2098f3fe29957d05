package testenv

import (
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
	rabbitmqctl(t, "add_vhost", name)
	t.Cleanup(func() { _ = exec.Command("rabbitmqctl", "delete_vhost", name).Run() })
	rabbitmqctl(t, "set_permissions", "-p", name, "guest", ".*", ".*", ".*")
	u, err := url.Parse(RabbitMQURL())
	if err != nil {
		t.Fatalf("RABBITMQ_URL: %v", err)
	}
	u.Path = "/" + name
	return u.String()
}

// DropConnections closes every client connection to vhost, as a broker restart would, and
// returns how many it closed.
func DropConnections(t testing.TB, vhostURL string) int {
	t.Helper()
	u, err := url.Parse(vhostURL)
	if err != nil {
		t.Fatal(err)
	}
	vhost := strings.TrimPrefix(u.Path, "/")
	out := rabbitmqctl(t, "list_connections", "pid", "vhost", "-q", "--no-table-headers")
	n := 0
	for line := range strings.Lines(out) {
		fields := strings.Fields(line)
		if len(fields) != 2 || fields[1] != vhost {
			continue
		}
		if err := exec.Command("rabbitmqctl", "close_connection", fields[0], "test drops connections").Run(); err == nil {
			n++
		}
	}
	return n
}

func rabbitmqctl(t testing.TB, args ...string) string {
	t.Helper()
	out, err := exec.Command("rabbitmqctl", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("rabbitmqctl %s: %v: %s (is RabbitMQ running? start it with `rabbitmq-server -detached`)",
			strings.Join(args, " "), err, out)
	}
	return string(out)
}
