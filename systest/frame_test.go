package systest_test

import (
	"context"
	"errors"
	"math"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/middleware"
	"github.com/msdemo/msdemo/internal/service"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/systest"
)

// seen is what the test service's handlers saw of one request.
type seen struct {
	requestID string
	err       error       // of the write
	events    []event.New // the handler's events after Write
}

// TestServiceFrameBehindTheGateway runs a service in the frame (internal/service) behind
// the real gateway and event store: request ids pass from the client, or from the
// gateway, through to the service's context and back; Write appends with the request's
// id and caller, leaves the handler's events alone, and a conflict keeps its type
// through the chain.
func TestServiceFrameBehindTheGateway(t *testing.T) {
	t.Parallel()
	sys := systest.Start(t)
	logger := testenv.Logger(t)
	rt, err := service.Start(context.Background(), sys.ServiceConfig(t, "product"), logger)
	if err != nil {
		t.Fatal(err)
	}
	// No read model here: every position counts as applied, so Write does not wait.
	rt.Checkpoint = func(context.Context) (string, int64, error) { return "", math.MaxInt64, nil }

	var mu sync.Mutex
	var last seen
	record := func(s seen) { mu.Lock(); last = s; mu.Unlock() }
	lastSeen := func() seen { mu.Lock(); defer mu.Unlock(); return last }
	r := chi.NewRouter()
	r.Get("/products", func(w http.ResponseWriter, r *http.Request) {
		record(seen{requestID: service.RequestID(r.Context())})
		httpjson.Write(w, http.StatusOK, map[string]any{"products": []any{}})
	})
	r.Post("/categories", func(w http.ResponseWriter, r *http.Request) {
		events := []event.New{service.NewEvent("thing.added", map[string]int{"n": 1})}
		zero := int64(0)
		_, err := rt.Write(r.Context(), "thing-1", &zero, events...)
		record(seen{requestID: service.RequestID(r.Context()), err: err, events: events})
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		httpjson.Write(w, http.StatusCreated, map[string]string{"id": "thing-1"})
	})
	testenv.Go(t, "product", func(ctx context.Context) error {
		defer rt.Close()
		return rt.Serve(ctx, service.API(logger, sys.TokenKey, func() bool { return true }, r))
	})
	testenv.Eventually(t, 20*time.Second, "the gateway routes to the service", func() bool {
		resp, err := http.Get(sys.GatewayURL + "/product/products")
		if err != nil {
			return false
		}
		resp.Body.Close()
		return resp.StatusCode == http.StatusOK
	})

	call := func(method, path, requestID, token string) *http.Response {
		t.Helper()
		req, _ := http.NewRequest(method, sys.GatewayURL+path, nil)
		if requestID != "" {
			req.Header.Set(middleware.RequestIDHeader, requestID)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp
	}

	t.Run("request ids", func(t *testing.T) {
		for _, sent := range []string{"client-id.42:a_b", "", "has space"} {
			resp := call(http.MethodGet, "/product/products", sent, "")
			got, inService := resp.Header.Get(middleware.RequestIDHeader), lastSeen().requestID
			if got != inService || !middleware.ValidRequestID(got) {
				t.Errorf("sent %q: got %q back and %q in the service, want one valid id in both", sent, got, inService)
			}
			if keep := middleware.ValidRequestID(sent); keep != (got == sent) {
				t.Errorf("sent %q: got %q, want the client's id kept only if it is valid", sent, got)
			}
		}
	})

	t.Run("write", func(t *testing.T) {
		token := sys.Token("boss", auth.Manager)
		if resp := call(http.MethodPost, "/product/categories", "write-1", token); resp.StatusCode != http.StatusCreated {
			t.Fatalf("first write: got %d, want 201", resp.StatusCode)
		}
		if s := lastSeen(); s.events[0].Metadata != (event.Metadata{}) {
			t.Errorf("the handler's event after Write: got metadata %+v, want it untouched", s.events[0].Metadata)
		}
		stored, found, err := rt.Events.Stream(context.Background(), "thing-1")
		if err != nil || !found || len(stored) != 1 {
			t.Fatalf("stream thing-1: got %d events, found %v, %v; want 1", len(stored), found, err)
		}
		if m := stored[0].Metadata; m.CorrelationID != "write-1" || m.User != "boss" {
			t.Errorf("stored metadata: got %+v, want correlation id write-1 and user boss", m)
		}

		if resp := call(http.MethodPost, "/product/categories", "write-2", token); resp.StatusCode != http.StatusConflict {
			t.Errorf("second write to a new stream: got %d, want 409", resp.StatusCode)
		}
		var conflict *service.ConflictError
		if err := lastSeen().err; !errors.As(err, &conflict) || conflict.Current != 1 {
			t.Errorf("second write: got error %v, want a *ConflictError at version 1", err)
		}
	})
}
