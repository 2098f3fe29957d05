package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/msdemo/msdemo/internal/testenv"
)

const listing = "/products?limit=50"

// httpRun is one row of the HTTP comparison.
type httpRun struct {
	Path      string  `json:"path"`
	URL       string  `json:"url"`
	RPS       float64 `json:"rps"`
	P99Ms     float64 `json:"p99_ms"`
	Errors    int     `json:"errors"` // non-2xx answers and socket errors
	Tool      string  `json:"tool"`
	Skipped   string  `json:"skipped,omitempty"`
	bodyBytes int
}

// httpRuns is the comparison of GET /product/products?limit=50 by three paths.
type httpRuns struct {
	Gateway      httpRun `json:"gateway"`
	Direct       httpRun `json:"direct"`
	Nginx        httpRun `json:"nginx"`
	GatewayVsNgx float64 `json:"gateway_over_nginx"`
	NginxWorkers string  `json:"nginx_workers"`
	GoLoad       bool    `json:"go_load_generator"`
}

// httpRuns loads the product listing through the gateway, directly and through nginx, one
// after the other, each with conns keep-alive connections for d. It uses wrk when it is
// installed, else a Go load generator of its own: the same tool for all three.
func (s *shop) httpRuns(ctx context.Context, conns int, d time.Duration) (httpRuns, error) {
	var res httpRuns
	load := goLoad
	if _, err := exec.LookPath("wrk"); err == nil {
		load = wrkLoad
	} else {
		res.GoLoad = true
		s.logger.Warn("wrk is not installed (apt-get install -y wrk); using the Go load generator")
	}
	var err error
	res.Gateway = httpRun{Path: "gateway", URL: "http://" + s.addr["gateway"] + "/product" + listing}
	res.Direct = httpRun{Path: "product service directly", URL: "http://" + s.addr["product"] + listing}
	res.Nginx = httpRun{Path: "nginx -> product service"}
	for _, r := range []*httpRun{&res.Gateway, &res.Direct} {
		if *r, err = load(ctx, *r, conns, d); err != nil {
			return res, err
		}
	}
	if _, err := os.Stat("/usr/sbin/nginx"); err != nil {
		s.logger.Warn("nginx is missing, its row is skipped: apt-get install -y nginx-light")
		res.Nginx.Skipped = "no /usr/sbin/nginx (apt-get install -y nginx-light)"
		return res, nil
	}
	stop, nginxURL, err := s.startNginx(ctx)
	if err != nil {
		return res, err
	}
	defer stop()
	res.Nginx.URL = nginxURL + "/product" + listing
	res.NginxWorkers = "auto (one per core)"
	if res.Nginx, err = load(ctx, res.Nginx, conns, d); err != nil {
		return res, err
	}
	if res.Nginx.RPS > 0 {
		res.GatewayVsNgx = res.Gateway.RPS / res.Nginx.RPS
	}
	return res, nil
}

// startNginx writes an nginx.conf that proxies /product/ to the product service with
// upstream keep-alive, runs nginx in the foreground on a free port and returns a function
// that stops it.
func (s *shop) startNginx(ctx context.Context) (stop func(), baseURL string, err error) {
	dir := filepath.Join(s.tmp, "nginx")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, "", err
	}
	addr, err := testenv.FreeLoopbackAddr()
	if err != nil {
		return nil, "", err
	}
	conf := fmt.Sprintf(`daemon off;
worker_processes auto;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log warn;
events { worker_connections 4096; }
http {
    access_log off;
    client_body_temp_path %[1]s/body;
    proxy_temp_path %[1]s/proxy;
    fastcgi_temp_path %[1]s/fastcgi;
    uwsgi_temp_path %[1]s/uwsgi;
    scgi_temp_path %[1]s/scgi;
    upstream product {
        server %[2]s;
        keepalive 64;
    }
    server {
        listen %[3]s;
        location /product/ {
            proxy_pass http://product/;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
        }
    }
}
`, dir, s.addr["product"], addr)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o644); err != nil {
		return nil, "", err
	}
	cmd := exec.Command("/usr/sbin/nginx", "-p", dir, "-e", filepath.Join(dir, "error.log"), "-c", path)
	out := &tailBuffer{max: 4000}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		return nil, "", fmt.Errorf("start nginx: %w", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	stop = func() {
		_ = cmd.Process.Signal(syscall.SIGQUIT)
		select {
		case <-exited:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
		}
	}
	baseURL = "http://" + addr
	if err := s.waitOK(ctx, baseURL+"/product"+listing, 10*time.Second); err != nil {
		stop()
		log, _ := os.ReadFile(filepath.Join(dir, "error.log"))
		return nil, "", fmt.Errorf("nginx does not proxy: %w\n%s%s", err, out, log)
	}
	return stop, baseURL, nil
}

// wrkLoad runs wrk with conns connections on 2 threads for d.
func wrkLoad(ctx context.Context, r httpRun, conns int, d time.Duration) (httpRun, error) {
	r.Tool = fmt.Sprintf("wrk -t2 -c%d -d%s --latency", conns, d)
	secs := strconv.Itoa(max(1, int(d.Seconds())))
	out, err := exec.CommandContext(ctx, "wrk", "-t2", "-c"+strconv.Itoa(conns), "-d"+secs+"s", "--latency", r.URL).CombinedOutput()
	if err != nil {
		return r, fmt.Errorf("wrk %s: %w\n%s", r.URL, err, out)
	}
	text := string(out)
	if m := regexp.MustCompile(`Requests/sec:\s+([0-9.]+)`).FindStringSubmatch(text); m != nil {
		r.RPS, _ = strconv.ParseFloat(m[1], 64)
	}
	if m := regexp.MustCompile(`(?m)^\s+99%\s+([0-9.]+)(us|ms|s)`).FindStringSubmatch(text); m != nil {
		v, _ := strconv.ParseFloat(m[1], 64)
		r.P99Ms = v * map[string]float64{"us": 0.001, "ms": 1, "s": 1000}[m[2]]
	}
	for _, re := range []string{`Non-2xx or 3xx responses:\s+(\d+)`, `Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)`} {
		if m := regexp.MustCompile(re).FindStringSubmatch(text); m != nil {
			for _, v := range m[1:] {
				n, _ := strconv.Atoi(v)
				r.Errors += n
			}
		}
	}
	if r.RPS == 0 {
		return r, fmt.Errorf("wrk %s: no Requests/sec in its output:\n%s", r.URL, text)
	}
	return r, nil
}

// goLoad is the fallback load generator: conns goroutines, each with a keep-alive
// connection of its own, sending GETs one after the other for d.
func goLoad(ctx context.Context, r httpRun, conns int, d time.Duration) (httpRun, error) {
	r.Tool = fmt.Sprintf("Go load generator, %d keep-alive connections", conns)
	var (
		mu    sync.Mutex
		lats  []float64
		wg    sync.WaitGroup
		until = time.Now().Add(d)
	)
	for range conns {
		wg.Go(func() {
			client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
			defer client.CloseIdleConnections()
			var mine []float64
			errs := 0
			for time.Now().Before(until) && ctx.Err() == nil {
				t0 := time.Now()
				resp, err := client.Get(r.URL)
				if err != nil {
					errs++
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					errs++
					continue
				}
				mine = append(mine, ms(time.Since(t0)))
			}
			mu.Lock()
			lats, r.Errors = append(lats, mine...), r.Errors+errs
			mu.Unlock()
		})
	}
	wg.Wait()
	r.RPS = float64(len(lats)) / d.Seconds()
	r.P99Ms = percentile(lats, 99)
	return r, nil
}
