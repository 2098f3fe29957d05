package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"
	"unicode/utf8"

	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/bus"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/httpjson"
)

// maxDeadLetters is how many dead letters a listing shows at most.
const maxDeadLetters = 200

// DeadLetter is a message that failed all its tries, as the API shows it.
type DeadLetter struct {
	ID         string          `json:"id"`
	Type       string          `json:"type"`
	RoutingKey string          `json:"routing_key"`
	Body       json.RawMessage `json:"body"`
	Reason     string          `json:"reason,omitempty"`
	DiedAt     *time.Time      `json:"died_at,omitempty"`
	Count      int64           `json:"count,omitempty"`
}

// MountDeadLetters adds the managers' dead-letter routes of the service's event queue
// ("<Subscription>.events.dead") to r:
//
//	GET    /dead-letters              list (oldest first)
//	POST   /dead-letters/{id}/replay  put one back into the service's queue
//	POST   /dead-letters/replay       put all back
//	DELETE /dead-letters/{id}         discard one
//
// A replayed event carries bus.ReplayHeader, so the subscription applies it even though it
// is behind the checkpoint; Apply's idempotency keeps it from counting twice.
func (rt *Runtime) MountDeadLetters(r chi.Router) {
	queue := event.Queue(rt.Subscription)
	r.Route("/dead-letters", func(r chi.Router) {
		r.Use(auth.Require(auth.Manager))
		r.Get("/", func(w http.ResponseWriter, r *http.Request) {
			dead, err := rt.Bus.DeadLetters(r.Context(), queue, maxDeadLetters)
			if err != nil {
				Error(w, r, rt.Logger, errors.Join(err, ErrUnavailable))
				return
			}
			list := make([]DeadLetter, 0, len(dead))
			for _, d := range dead {
				list = append(list, deadLetter(d))
			}
			httpjson.Write(w, http.StatusOK, map[string]any{"dead_letters": list})
		})
		r.Post("/replay", func(w http.ResponseWriter, r *http.Request) {
			dead, err := rt.Bus.DeadLetters(r.Context(), queue, maxDeadLetters)
			if err != nil {
				Error(w, r, rt.Logger, errors.Join(err, ErrUnavailable))
				return
			}
			replayed := 0
			for _, d := range dead {
				if err := rt.Bus.Replay(r.Context(), queue, d.ID); err == nil {
					replayed++
				}
			}
			httpjson.Write(w, http.StatusOK, map[string]int{"replayed": replayed})
		})
		r.Post("/{id}/replay", func(w http.ResponseWriter, r *http.Request) {
			rt.takeDeadLetter(w, r, rt.Bus.Replay)
		})
		r.Delete("/{id}", func(w http.ResponseWriter, r *http.Request) {
			rt.takeDeadLetter(w, r, rt.Bus.Discard)
		})
	})
}

// takeDeadLetter replays or discards the dead letter of the URL's id: 204, or 404.
func (rt *Runtime) takeDeadLetter(w http.ResponseWriter, r *http.Request, take func(ctx context.Context, queue, id string) error) {
	err := take(r.Context(), event.Queue(rt.Subscription), chi.URLParam(r, "id"))
	switch {
	case errors.Is(err, bus.ErrNotFound):
		Error(w, r, rt.Logger, ErrNotFound)
	case err != nil:
		Error(w, r, rt.Logger, errors.Join(err, ErrUnavailable))
	default:
		w.WriteHeader(http.StatusNoContent)
	}
}

// redactBody returns the body of a dead-lettered event as managers may read it: with the
// secret fields of its data redacted (event.Redact). A body that is not an event is
// returned unchanged.
func redactBody(body []byte) []byte {
	var msg map[string]json.RawMessage
	if json.Unmarshal(body, &msg) != nil || msg == nil {
		return body
	}
	var typ string
	if json.Unmarshal(msg["type"], &typ) != nil || !event.HasSecrets(typ) {
		return body
	}
	e := event.Redact(event.Stored{Type: typ, Data: msg["data"]})
	if bytes.Equal(e.Data, msg["data"]) {
		return body
	}
	msg["data"] = e.Data
	out, err := json.Marshal(msg)
	if err != nil {
		return body
	}
	return out
}

// deadLetter reads what RabbitMQ's x-death header says about why and when d died.
func deadLetter(d bus.Delivery) DeadLetter {
	dl := DeadLetter{ID: d.ID, Type: d.Type, RoutingKey: d.RoutingKey, Body: redactBody(d.Body)}
	if !json.Valid(d.Body) || !utf8.Valid(d.Body) { // a JSON text is UTF-8 (RFC 8259)
		dl.Body, _ = json.Marshal(string(d.Body))
	}
	if deaths, ok := d.Headers["x-death"].([]any); ok && len(deaths) > 0 {
		if death, ok := deaths[0].(map[string]any); ok {
			dl.Reason, _ = death["reason"].(string)
			if at, ok := death["time"].(time.Time); ok {
				dl.DiedAt = &at
			}
			dl.Count, _ = death["count"].(int64)
		}
	}
	if key, ok := d.Headers["x-first-death-exchange"]; ok && dl.RoutingKey == "" {
		dl.RoutingKey, _ = key.(string)
	}
	return dl
}
