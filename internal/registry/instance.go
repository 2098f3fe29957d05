package registry

import (
	"fmt"
	"net"
	"os"

	"github.com/msdemo/msdemo/internal/idgen"
)

// InstanceID returns a name for this process's instance of service that is unique across
// hosts and restarts, e.g. "product-host1-4711-k3xq".
func InstanceID(service string) string {
	host, _ := os.Hostname()
	return fmt.Sprintf("%s-%s-%d-%s", service, host, os.Getpid(), idgen.Short(4))
}

// LoopbackURL is the URL of a listener on this machine: http://127.0.0.1:<port>. It is
// the default URL a component announces when no ADVERTISE_URL is set.
func LoopbackURL(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return fmt.Sprintf("http://127.0.0.1:%d", tcp.Port)
	}
	return "http://" + addr.String()
}
