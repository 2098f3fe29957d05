package eventstore

import (
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/httpjson"
)

// Limits of the read API.
const (
	defaultPageSize = 100
	maxPageSize     = 1000
)

// newServer returns the read API: the global feed, one stream, and health.
func newServer(s *Store, pub *follower, logger *slog.Logger) http.Handler {
	r := chi.NewRouter()
	r.Get("/events", handleFeed(s))
	r.Get("/streams/{stream}", handleStream(s))
	r.Get("/healthz", handleHealth(s, pub))
	r.NotFound(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, http.StatusNotFound, "no such route")
	})
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		httpjson.Error(w, http.StatusMethodNotAllowed, "method not allowed")
	})
	return r
}

// feedResponse is the answer of GET /events.
type feedResponse struct {
	StoreID   string         `json:"store_id"`
	Events    []event.Stored `json:"events"`
	NextAfter int64          `json:"next_after"`
	Head      int64          `json:"head"`
}

// handleFeed serves GET /events?after=P&limit=N&types=a.b,c.* (patterns as in AMQP topic
// bindings: event.TypeMatches).
func handleFeed(s *Store) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		fields := map[string]string{}
		after := queryInt(q.Get("after"), 0, 0, 1<<62, "after", fields)
		limit := queryInt(q.Get("limit"), defaultPageSize, 1, maxPageSize, "limit", fields)
		if len(fields) > 0 {
			httpjson.FieldErrors(w, "invalid query", fields)
			return
		}
		var types []string
		for t := range strings.SplitSeq(q.Get("types"), ",") {
			if t = strings.TrimSpace(t); t != "" {
				types = append(types, t)
			}
		}
		page, err := s.Feed(r.Context(), int64(after), limit, types)
		if err != nil {
			s.logger.ErrorContext(r.Context(), "read feed", "after", after, "error", err)
			httpjson.Error(w, http.StatusServiceUnavailable, "the event store cannot read its database")
			return
		}
		if page.Events == nil {
			page.Events = []event.Stored{}
		}
		httpjson.Write(w, http.StatusOK, feedResponse{StoreID: s.ID(), Events: forReader(r, page.Events),
			NextAfter: page.NextAfter, Head: page.Head})
	}
}

// forReader returns events as the reader of r may see them: whole for a service, with
// their secret fields redacted for a person (a request through the gateway: event.Redact).
func forReader(r *http.Request, events []event.Stored) []event.Stored {
	if r.Header.Get(auth.RoleHeader) == "" {
		return events
	}
	return event.RedactAll(events)
}

// streamResponse is the answer of GET /streams/{stream}.
type streamResponse struct {
	StoreID string         `json:"store_id"`
	Stream  string         `json:"stream"`
	Version int64          `json:"version"`
	Events  []event.Stored `json:"events"`
}

func handleStream(s *Store) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		stream := chi.URLParam(r, "stream")
		events, found, err := s.Stream(r.Context(), stream)
		switch {
		case err != nil:
			s.logger.ErrorContext(r.Context(), "read stream", "stream", stream, "error", err)
			httpjson.Error(w, http.StatusServiceUnavailable, "the event store cannot read its database")
		case !found:
			httpjson.Error(w, http.StatusNotFound, "stream not found")
		default:
			httpjson.Write(w, http.StatusOK, streamResponse{StoreID: s.ID(), Stream: stream,
				Version: events[len(events)-1].Version, Events: forReader(r, events)})
		}
	}
}

func handleHealth(s *Store, pub *follower) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		role := "writer"
		if s.following.Load() {
			role = "standby" // it does not publish; indexed is the writer's recorded mark
		}
		httpjson.Write(w, http.StatusOK, map[string]any{"status": "ok", "store_id": s.ID(), "role": role,
			"head": s.Head(), "published": pub.done.Load(), "indexed": s.indexer.done.Load(),
			"unindexed": s.pending.count()})
	}
}

// queryInt parses an integer query value within [lo, hi], or returns def when it is empty;
// a problem is recorded in fields under name.
func queryInt(v string, def, lo, hi int, name string, fields map[string]string) int {
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		fields[name] = "must be a whole number from " + strconv.Itoa(lo) + " to " + strconv.Itoa(hi)
		return def
	}
	return n
}
