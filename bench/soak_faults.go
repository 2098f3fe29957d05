package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/testenv"
)

// The kinds of fault the soak injects, as its report counts them.
const (
	faultKill     = "kill"             // SIGKILL a component, start it again (kill:<name> per component)
	faultDrop     = "drop-connections" // close every broker connection of the soak's vhost
	faultWipe     = "wipe-redis-keys"  // delete the shop's Redis keys, as a restart of a Redis without persistence does
	faultPostgres = "restart-postgresql"
	faultRedis    = "restart-redis"
	faultRabbitMQ = "restart-rabbitmq"
)

// faults injects one fault at a time, at random intervals around every, until ctx ends,
// and counts them. Restarting the shared servers (withServers) stops every other user's
// tests and shops on this machine too: only with -soak-servers.
type faults struct {
	shop        *soakShop
	rng         *rand.Rand
	every       time.Duration
	withServers bool

	mu       sync.Mutex
	count    map[string]int
	next     []string                 // the rest of this round of faults
	recovery map[string]time.Duration // longest kill-to-healthy of each component
	problems notes                    // a component that did not come back, a server that did not restart
}

func (f *faults) inject(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(time.Duration(float64(f.every) * (0.5 + f.rng.Float64()))):
		}
		kind := f.nextFault()
		var err error
		switch family, name, _ := strings.Cut(kind, ":"); family {
		case faultKill:
			down := time.Duration(200+f.rng.IntN(3000)) * time.Millisecond
			f.shop.logger.Info("fault: SIGKILL", "component", name, "down", down)
			t0 := time.Now()
			if err = f.shop.restart(name, down); err == nil {
				err = f.shop.waitHealthy(ctx, name, 90*time.Second)
			}
			took := time.Since(t0).Round(100 * time.Millisecond)
			f.shop.logger.Info("fault: component healthy again", "component", name, "after", took, "error", err)
			f.mu.Lock()
			f.recovery[name] = max(f.recovery[name], took)
			f.mu.Unlock()
		case faultDrop:
			var n int
			n, err = testenv.CloseVHostConnections(f.shop.busURL)
			f.shop.logger.Info("fault: dropped broker connections", "connections", n)
		case faultWipe:
			var n int
			t0 := time.Now()
			n, err = deleteRedisKeys(ctx, f.shop.opts.Redis, f.shop.namespace)
			f.shop.logger.Info("fault: deleted the shop's Redis keys", "keys", n)
			if err == nil { // the customer service notices within a second or two and rebuilds
				time.Sleep(3 * time.Second)
				err = f.shop.waitHealthy(ctx, registry.Customer, 90*time.Second)
			}
			f.mu.Lock()
			f.recovery[faultWipe] = max(f.recovery[faultWipe], time.Since(t0).Round(100*time.Millisecond))
			f.mu.Unlock()
		default:
			f.shop.logger.Info("fault: restarting a server", "fault", kind)
			err = restartServer(ctx, kind)
		}
		f.mu.Lock()
		f.count[kind]++
		f.mu.Unlock()
		if err != nil && ctx.Err() == nil {
			f.problems.add(fmt.Sprintf("%s: %v", kind, err))
		}
	}
}

// nextFault is the fault to inject next, from a round of every kind in a random order:
// a SIGKILL of each component (kill:<name>), two connection drops, a wipe of the shop's
// Redis keys and, with withServers,
// a restart of each server; then another round. So even a short soak kills every
// component once, the event store and the gateway included.
func (f *faults) nextFault() string {
	if len(f.next) == 0 {
		for _, c := range registry.Components() {
			f.next = append(f.next, faultKill+":"+c.Name)
		}
		f.next = append(f.next, faultDrop, faultDrop, faultWipe)
		if f.withServers {
			f.next = append(f.next, faultPostgres, faultRedis, faultRabbitMQ)
		}
		f.rng.Shuffle(len(f.next), func(i, j int) { f.next[i], f.next[j] = f.next[j], f.next[i] })
	}
	kind := f.next[0]
	f.next = f.next[1:]
	return kind
}

// restartServer restarts one of the shared servers the way that works on this machine
// (no systemd: the commands of .ci/test), and waits until it answers again.
func restartServer(ctx context.Context, kind string) error {
	var steps [][]string
	switch kind {
	case faultPostgres:
		versions, _ := filepath.Glob("/etc/postgresql/*")
		if len(versions) == 0 {
			return fmt.Errorf("no cluster under /etc/postgresql")
		}
		steps = [][]string{{"pg_ctlcluster", "--skip-systemctl-redirect", filepath.Base(versions[0]), "main", "restart"}}
	case faultRedis:
		steps = [][]string{{"redis-cli", "shutdown", "nosave"},
			{"redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", "6379", "--save", "", "--appendonly", "no"}}
	case faultRabbitMQ:
		steps = [][]string{{"rabbitmqctl", "stop_app"}, {"rabbitmqctl", "start_app"}}
	}
	for _, step := range steps {
		out, err := exec.CommandContext(ctx, step[0], step[1:]...).CombinedOutput()
		if step[0] == "redis-cli" { // shutdown closes the connection it asked on: no answer is its success
			time.Sleep(500 * time.Millisecond)
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w: %s", strings.Join(step, " "), err, out)
		}
	}
	check := map[string][]string{faultPostgres: {"pg_isready", "-h", "127.0.0.1", "-q"},
		faultRedis: {"redis-cli", "ping"}, faultRabbitMQ: {"rabbitmqctl", "-q", "await_startup", "--timeout", "10"}}[kind]
	for deadline := time.Now().Add(60 * time.Second); ; time.Sleep(500 * time.Millisecond) {
		if err := exec.CommandContext(ctx, check[0], check[1:]...).Run(); err == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s still fails 60 s after the restart", strings.Join(check, " "))
		}
	}
}

// counts returns the faults injected by kind, with a total per family ("kill" is every
// component's kills).
func (f *faults) counts() map[string]int {
	f.mu.Lock()
	defer f.mu.Unlock()
	out := map[string]int{}
	for k, n := range f.count {
		out[k] = n
		if family, _, ok := strings.Cut(k, ":"); ok {
			out[family] += n
		}
	}
	return out
}

// sortedKeys is m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
