package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/testenv"
)

// soakShop is the shop as one process per component (`msdemo -target=<name>`), in a
// RabbitMQ vhost, a DATA_DIR and a namespace of the soak's own, so that the soak can
// SIGKILL any component and start it again. The event store keeps its events in the
// embedded FerretDB (SQLite) under DATA_DIR, which outlives its processes; the product
// service's SQLite read model and the token key sit there too.
type soakShop struct {
	logger    *slog.Logger
	opts      options
	tmp       string
	bin       string
	namespace string
	vhost     string
	busURL    string
	env       []string
	addr      map[string]string // component -> host:port

	mu    sync.Mutex
	procs map[string]*soakProc

	// unexpectedExits counts the components that ended without being killed; the
	// supervisor starts them again, as compose's restart policy would.
	unexpectedExits atomic.Int64
	exitNotes       notes
	stopping        atomic.Bool // no more restarts
}

// soakProc is one running component process.
type soakProc struct {
	cmd    *exec.Cmd
	exited chan struct{}
	out    *tailBuffer
	killed atomic.Bool // by the soak: its exit is expected
}

// startSoakShop builds msdemo and starts every component as its own process, then waits
// until each is healthy and the gateway routes every service.
func startSoakShop(ctx context.Context, o options, logger *slog.Logger) (_ *soakShop, err error) {
	tmp, err := os.MkdirTemp("", "msdemo-soak-")
	if err != nil {
		return nil, err
	}
	suffix := randomHex(4)
	s := &soakShop{logger: logger, opts: o, tmp: tmp, namespace: "soak" + suffix, vhost: "msdemo-soak-" + suffix,
		addr: map[string]string{}, procs: map[string]*soakProc{}}
	defer func() {
		if err != nil {
			s.stop()
		}
	}()
	if s.bin, err = buildMsdemo(ctx, tmp, logger); err != nil {
		return nil, err
	}
	if s.busURL, err = testenv.CreateVHost(o.RabbitMQ, s.vhost); err != nil {
		return nil, err
	}
	key := make([]byte, auth.MinKeyBytes)
	_, _ = rand.Read(key)
	// One token key for every process (not DATA_DIR/token.key, which the first processes
	// would race to create).
	if s.env, err = componentEnv(o, filepath.Join(tmp, "data"), s.busURL, s.namespace, s.addr,
		"MSDEMO_TOKEN_KEY="+hex.EncodeToString(key),
		"MSDEMO_START_CREDIT_CENTS="+fmt.Sprint(soakStartCredit), "SAGA_TIMEOUT="+soakSagaTimeout.String(),
		"METRICS_ADDR="); err != nil { // one process per component: they would share the default port
		return nil, err
	}
	s.env = append(s.env, "GATEWAY_URL=http://"+s.addr[registry.Gateway], "EVENTSTORE_URL=http://"+s.addr[registry.EventStore])
	if err := os.MkdirAll(filepath.Join(tmp, "data"), 0o755); err != nil {
		return nil, err
	}

	logger.Info("starting msdemo, one process per component", "vhost", s.vhost, "namespace", s.namespace)
	// The event store first: the others catch up from it and append through it.
	for _, c := range registry.Components() {
		if err := s.start(c.Name); err != nil {
			return nil, err
		}
		if c.Name == registry.EventStore {
			if err := s.waitHealthy(ctx, c.Name, 90*time.Second); err != nil {
				return nil, err
			}
		}
	}
	for _, c := range registry.Components() {
		if err := s.waitHealthy(ctx, c.Name, 90*time.Second); err != nil {
			return nil, err
		}
	}
	return s, s.waitRoutable(ctx, 60*time.Second)
}

// start starts component name as its own process, supervised: if it ends without being
// killed by the soak, it is counted and started again a second later.
func (s *soakShop) start(name string) error {
	cmd := exec.Command(s.bin, "-target="+name)
	cmd.Env = append(os.Environ(), s.env...)
	p := &soakProc{cmd: cmd, exited: make(chan struct{}), out: &tailBuffer{max: 16000}}
	var out io.Writer = p.out
	if s.opts.Soak.Logs != "" { // every run of the component appends to its log
		f, err := os.OpenFile(filepath.Join(s.opts.Soak.Logs, name+".log"), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			return err
		}
		defer f.Close() // the child has its own descriptor
		out = f
		p.out.max = 0
	}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	s.mu.Lock()
	s.procs[name] = p
	s.mu.Unlock()
	go func() {
		_ = cmd.Wait()
		close(p.exited)
		if p.killed.Load() || s.stopping.Load() {
			return
		}
		s.unexpectedExits.Add(1)
		s.exitNotes.add(fmt.Sprintf("%s exited by itself (%v); its last output:\n%s", name, cmd.ProcessState, tail(p.out.String(), 3000)))
		s.logger.Warn("component exited by itself; starting it again", "component", name, "state", cmd.ProcessState.String())
		time.Sleep(time.Second)
		s.mu.Lock()
		current := s.procs[name] == p
		s.mu.Unlock()
		if current && !s.stopping.Load() {
			if err := s.start(name); err != nil {
				s.logger.Error("restart", "component", name, "error", err)
			}
		}
	}()
	return nil
}

// kill stops component name with SIGKILL, as a crash would, and waits until it is gone.
func (s *soakShop) kill(name string) {
	s.mu.Lock()
	p := s.procs[name]
	s.mu.Unlock()
	if p == nil {
		return
	}
	p.killed.Store(true)
	_ = p.cmd.Process.Signal(syscall.SIGKILL)
	<-p.exited
}

// restart kills component name, leaves it down for down, and starts it again.
func (s *soakShop) restart(name string, down time.Duration) error {
	s.kill(name)
	time.Sleep(down)
	return s.start(name)
}

// waitHealthy polls the component's /healthz until it answers 200, for at most d.
func (s *soakShop) waitHealthy(ctx context.Context, name string, d time.Duration) error {
	url := "http://" + s.addr[name] + "/healthz"
	client := &http.Client{Timeout: 5 * time.Second}
	for deadline := time.Now().Add(d); ; {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not healthy after %s (last: %v); its output:\n%s", name, d, err, tail(s.output(name), 3000))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// waitRoutable waits until the gateway lists an instance of every service (an instance
// announces itself every 2 s).
func (s *soakShop) waitRoutable(ctx context.Context, d time.Duration) error {
	token := s.managerToken()
	client := &http.Client{Timeout: 5 * time.Second}
	for deadline := time.Now().Add(d); ; {
		var reg struct {
			Instances []struct{ Service string } `json:"instances"`
		}
		if getJSON(ctx, client, "http://"+s.addr[registry.Gateway]+"/registry", token, &reg) == http.StatusOK {
			seen := map[string]bool{}
			for _, in := range reg.Instances {
				seen[in.Service] = true
			}
			all := true
			for _, svc := range registry.Upstreams() {
				all = all && seen[svc]
			}
			if all {
				return nil
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("the gateway does not route every service after %s", d)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
}

// managerToken signs a short-lived manager token with the shop's key, for the soak's own
// reads (the registry, the checks); the managers of the load log in like anyone.
func (s *soakShop) managerToken() string {
	var hexKey string
	for _, kv := range s.env {
		if v, ok := strings.CutPrefix(kv, "MSDEMO_TOKEN_KEY="); ok {
			hexKey = v
		}
	}
	key, err := auth.LoadKey(hexKey, "")
	if err != nil {
		panic(err) // the soak made the key itself
	}
	return key.Sign(auth.Claims{User: "admin", Role: auth.Manager, ExpiresAt: time.Now().Add(time.Hour)})
}

// rebuild runs `msdemo rebuild -target=all` with the shop's configuration; the services
// should be stopped meanwhile.
func (s *soakShop) rebuild(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, s.bin, "rebuild", "-target=all")
	cmd.Env = append(os.Environ(), s.env...)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("msdemo rebuild: %w\n%s", err, tail(string(out), 3000))
	}
	return nil
}

func (s *soakShop) output(name string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if p := s.procs[name]; p != nil {
		return p.out.String()
	}
	return ""
}

// stop kills every component and deletes what the soak created.
func (s *soakShop) stop() {
	s.stopping.Store(true)
	s.mu.Lock()
	names := make([]string, 0, len(s.procs))
	for name := range s.procs {
		names = append(names, name)
	}
	s.mu.Unlock()
	for _, name := range names {
		s.kill(name)
	}
	deleteShared(s.opts, s.namespace, s.vhost, s.logger)
	_ = os.RemoveAll(s.tmp)
}

// notes collects messages from several goroutines, keeping the first 20.
type notes struct {
	mu   sync.Mutex
	list []string
	n    int
}

func (n *notes) add(msg string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.n++
	if len(n.list) < 20 {
		n.list = append(n.list, msg)
	}
}

func (n *notes) all() []string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return append([]string(nil), n.list...)
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// getJSON GETs url with a bearer token and decodes a 200 answer into out; it returns the
// status, 0 without an answer.
func getJSON(ctx context.Context, client *http.Client, url, token string, out any) int {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return 0
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	if resp.StatusCode == http.StatusOK && json.NewDecoder(resp.Body).Decode(out) != nil {
		return 0
	}
	return resp.StatusCode
}
