package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"strconv"
	"sync/atomic"

	"github.com/valyala/fasthttp"
)

// maxIDLen is the longest client request id the gateway keeps.
const maxIDLen = 64

// requestID returns the request's X-Request-Id, appended to buf: the client's if it is a
// sane token, otherwise a new one, which it also sets on the request.
func (s *server) requestID(h *fasthttp.RequestHeader, buf []byte) []byte {
	if id := h.Peek("X-Request-Id"); saneID(id) {
		return append(buf, id...)
	}
	id := s.ids.next(buf)
	h.SetBytesV("X-Request-Id", id)
	return id
}

// saneID reports whether id is 1 to maxIDLen letters, digits, '-', '_', '.' or ':',
// which keeps log lines and headers clean (no spaces, quotes or control characters).
func saneID(id []byte) bool {
	if len(id) == 0 || len(id) > maxIDLen {
		return false
	}
	for _, c := range id {
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9',
			c == '-', c == '_', c == '.', c == ':':
		default:
			return false
		}
	}
	return true
}

// idGenerator makes request ids that are unique across gateway instances: a random
// prefix per process and a counter, e.g. "3f9a1c2b-1kz". Cheaper than a UUID per request.
type idGenerator struct {
	prefix string
	n      atomic.Uint64
}

func newIDGenerator() *idGenerator {
	var b [4]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return &idGenerator{prefix: hex.EncodeToString(b[:]) + "-"}
}

// next appends a new id to buf.
func (g *idGenerator) next(buf []byte) []byte {
	return strconv.AppendUint(append(buf, g.prefix...), g.n.Add(1), 36)
}
