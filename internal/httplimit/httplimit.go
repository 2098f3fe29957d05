// Package httplimit bounds what one client can take of an msdemo HTTP server: the size of
// its request headers and body, the time it may take to send them and to read the answer,
// how long an idle keep-alive connection stays open, and how many connections one client
// address may hold at once. Limits holds the numbers, with one set of defaults for every
// server (the gateway, the sites and the services); Apply sets them on a net/http server,
// and PerIP wraps its listener with the per-address cap. The gateway, built on fasthttp,
// maps the same Limits onto fasthttp's fields, whose MaxConnsPerIP is the same cap.
//
// A slow client (slowloris: headers a byte at a time, a body that never ends) is cut off
// by ReadHeaderTimeout and ReadTimeout, which run from the first byte of the request and
// are not extended by the bytes that trickle in; while it waits for them, it can hold no
// more than MaxConnsPerIP connections of one address. A stream that outlives the write
// timeout (the sites' Server-Sent Events) lifts it for its request with
// http.ResponseController; the read deadline net/http lifts by itself once a request's
// body is read.
package httplimit

import (
	"cmp"
	"net"
	"net/http"
	"sync"
	"time"
)

// NoCap as Limits.MaxConnsPerIP turns the per-address cap off (behind a proxy, every
// client has the proxy's address).
const NoCap = -1

// Limits are the bounds of one server. A zero field takes its default (Defaults).
type Limits struct {
	// ReadHeaderTimeout bounds the time from a request's first byte to the end of its
	// headers (default 10 s).
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds the time from a request's first byte to the end of its body
	// (default 30 s).
	ReadTimeout time.Duration
	// WriteTimeout bounds the time from the end of a request's headers to the end of the
	// answer (net/http), or the writing of the answer once the handler has made it
	// (fasthttp) (default 60 s). Event streams lift it for themselves.
	WriteTimeout time.Duration
	// IdleTimeout is how long a keep-alive connection may wait for its next request
	// (default 2 min).
	IdleTimeout time.Duration
	// MaxHeaderBytes bounds the request line and headers (default 16 KiB; larger: 431).
	MaxHeaderBytes int
	// MaxBodyBytes bounds a request body (default 1 MiB; larger: 413).
	MaxBodyBytes int64
	// MaxConnsPerIP is how many connections one client address may hold at once (default
	// 256; NoCap for no cap). A connection beyond it is closed at once.
	MaxConnsPerIP int
}

// DefaultMaxBodyBytes is the default of Limits.MaxBodyBytes: the largest request body of
// the REST API and the sites' forms.
const DefaultMaxBodyBytes = 1 << 20

// MaxUploadBytes bounds a file uploaded to the shop (a product image): the body of the
// routes that take one, which may be larger than MaxBodyBytes (BodyLimit). The gateway, the
// admin site and the product service all use it, so that one number is the limit.
const MaxUploadBytes = 5 << 20

// MaxUploadBodyBytes bounds the body of a route that takes an upload: the file
// (MaxUploadBytes) and, in a multipart form, its envelope and other fields.
const MaxUploadBodyBytes = MaxUploadBytes + 64<<10

// Defaults are the limits of a zero Limits: generous for a browser or an API client,
// tight for a slow one.
var Defaults = Limits{
	ReadHeaderTimeout: 10 * time.Second,
	ReadTimeout:       30 * time.Second,
	WriteTimeout:      60 * time.Second,
	IdleTimeout:       2 * time.Minute,
	MaxHeaderBytes:    16 << 10,
	MaxBodyBytes:      DefaultMaxBodyBytes,
	MaxConnsPerIP:     256,
}

// WithDefaults returns l with each zero field set to its default.
func (l Limits) WithDefaults() Limits {
	l.ReadHeaderTimeout = cmp.Or(l.ReadHeaderTimeout, Defaults.ReadHeaderTimeout)
	l.ReadTimeout = cmp.Or(l.ReadTimeout, Defaults.ReadTimeout)
	l.WriteTimeout = cmp.Or(l.WriteTimeout, Defaults.WriteTimeout)
	l.IdleTimeout = cmp.Or(l.IdleTimeout, Defaults.IdleTimeout)
	l.MaxHeaderBytes = cmp.Or(l.MaxHeaderBytes, Defaults.MaxHeaderBytes)
	l.MaxBodyBytes = cmp.Or(l.MaxBodyBytes, Defaults.MaxBodyBytes)
	l.MaxConnsPerIP = cmp.Or(l.MaxConnsPerIP, Defaults.MaxConnsPerIP)
	return l
}

// Apply sets the timeouts and the header limit of l (with defaults) on srv. The body limit
// is the handler's (http.MaxBytesReader, chi's middleware.RequestSize) and the connection
// cap the listener's (PerIP).
func (l Limits) Apply(srv *http.Server) {
	l = l.WithDefaults()
	srv.ReadHeaderTimeout = l.ReadHeaderTimeout
	srv.ReadTimeout = l.ReadTimeout
	srv.WriteTimeout = l.WriteTimeout
	srv.IdleTimeout = l.IdleTimeout
	srv.MaxHeaderBytes = l.MaxHeaderBytes
}

// BodyLimit returns middleware that bounds each request body with http.MaxBytesReader on
// the writer it is given (wrap the server's own, so that it closes the connection after a
// body too large): to the limit of the route of large (patterns as http.ServeMux takes
// them, such as "PUT /products/{id}/image") the request matches, else to max. A read
// beyond the limit is an *http.MaxBytesError, which the handler answers (413).
func BodyLimit(max int64, large map[string]int64) func(http.Handler) http.Handler {
	routes := http.NewServeMux()
	for pattern := range large {
		routes.Handle(pattern, http.NotFoundHandler())
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			limit := max
			if len(large) > 0 {
				if _, pattern := routes.Handler(r); pattern != "" {
					limit = large[pattern]
				}
			}
			r.Body = http.MaxBytesReader(w, r.Body, limit)
			next.ServeHTTP(w, r)
		})
	}
}

// Listener returns ln with l's per-address cap (PerIP), or ln itself for NoCap.
func (l Limits) Listener(ln net.Listener) net.Listener {
	l = l.WithDefaults()
	if l.MaxConnsPerIP == NoCap {
		return ln
	}
	return PerIP(ln, l.MaxConnsPerIP)
}

// PerIP returns a listener that accepts from ln at most max connections at once from one
// client IP address: one beyond is closed as soon as it is accepted, before a byte is
// read, and Accept goes on to the next. A connection counts until it is closed. max must
// be at least 1.
//
// It is hand-written: golang.org/x/net/netutil.LimitListener caps the connections of all
// clients together, and no kept library caps them per address for net/http (fasthttp's
// Server.MaxConnsPerIP does, for the gateway).
func PerIP(ln net.Listener, max int) net.Listener {
	if max < 1 {
		panic("httplimit: PerIP needs max >= 1")
	}
	return &perIPListener{Listener: ln, max: max, conns: map[string]int{}}
}

type perIPListener struct {
	net.Listener
	max   int
	mu    sync.Mutex
	conns map[string]int // open connections by client IP
}

func (l *perIPListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		ip := clientIP(c.RemoteAddr())
		if !l.take(ip) {
			c.Close()
			continue
		}
		return &countedConn{Conn: c, release: func() { l.release(ip) }}, nil
	}
}

func (l *perIPListener) take(ip string) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[ip] >= l.max {
		return false
	}
	l.conns[ip]++
	return true
}

func (l *perIPListener) release(ip string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.conns[ip]--; l.conns[ip] <= 0 {
		delete(l.conns, ip)
	}
}

// clientIP is the IP of addr without its port (the whole address for one without).
func clientIP(addr net.Addr) string {
	if tcp, ok := addr.(*net.TCPAddr); ok {
		return tcp.IP.String()
	}
	host, _, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	return host
}

// countedConn gives its place back to the listener once, on the first Close.
type countedConn struct {
	net.Conn
	once    sync.Once
	release func()
}

func (c *countedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}
