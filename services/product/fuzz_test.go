package product_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/msdemo/msdemo/eventstore"
	"github.com/msdemo/msdemo/internal/auth"
	"github.com/msdemo/msdemo/internal/service"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/services/gateway"
	"github.com/msdemo/msdemo/services/product"
)

// tbShop is an event store and the product service, and a gateway if asked for, for a
// fuzz target or a benchmark (systest.Start takes a *testing.T). The fuzz targets send
// requests to the service itself: the gateway adds nothing to the decoding under test.
type tbShop struct {
	api     string // the service's own address
	gateway string // the product API at the gateway, if one runs
	feedURL string
	manager string
}

func startTBShop(f testing.TB, withGateway bool, logger *slog.Logger) *tbShop {
	f.Helper()
	conn := testenv.Bus(f)
	name := testenv.Name(f)
	key, err := auth.LoadKey("", f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	esAddr := testenv.FreeAddr(f)
	es := eventstore.Config{Addr: esAddr, RabbitMQURL: testenv.RabbitMQURL(), DataDir: f.TempDir(),
		Exchange: name + ".events", AppendQueue: name + ".append", RegistryExchange: name + ".registry"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- eventstore.Run(ctx, es, logger) }()
	f.Cleanup(func() {
		cancel()
		select {
		case <-done:
		case <-time.After(15 * time.Second):
			f.Errorf("event store did not stop within 15 s")
		}
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = conn.DeleteQueue(ctx, es.AppendQueue)
		_ = conn.DeleteExchange(ctx, es.Exchange)
		_ = conn.DeleteExchange(ctx, es.RegistryExchange)
	})
	testenv.WaitHealthy(f, "http://"+esAddr+"/healthz", 20*time.Second)

	cfg := product.Config{
		Service: service.Config{Name: "product", Addr: testenv.FreeAddr(f), RabbitMQURL: testenv.RabbitMQURL(),
			EventstoreURL: "http://" + esAddr, TokenKey: key, Exchange: es.Exchange, AppendQueue: es.AppendQueue,
			RegistryExchange: es.RegistryExchange},
		DBPath:       filepath.Join(f.TempDir(), "product.db"),
		Subscription: name + ".product",
		PostgresURL:  testenv.PostgresURL(),
		Database:     imagesDatabase(f),
	}
	deleteQueuesAtEnd(f, cfg.Subscription)
	runProduct(f, cfg, logger)
	s := &tbShop{api: "http://" + cfg.Service.Addr, feedURL: "http://" + esAddr + "/events?limit=1",
		manager: key.Sign(auth.Claims{User: "boss", Role: auth.Manager, ExpiresAt: time.Now().Add(24 * time.Hour)})}
	if withGateway {
		gwAddr := testenv.FreeAddr(f)
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() {
			done <- gateway.Run(ctx, gateway.Config{Addr: gwAddr, RabbitMQURL: testenv.RabbitMQURL(),
				RegistryExchange: es.RegistryExchange, TokenKey: key}, logger)
		}()
		f.Cleanup(func() {
			cancel()
			select {
			case <-done:
			case <-time.After(15 * time.Second):
				f.Errorf("gateway did not stop within 15 s")
			}
		})
		testenv.WaitHealthy(f, "http://"+gwAddr+"/healthz", 20*time.Second)
		s.gateway = "http://" + gwAddr + "/product"
		testenv.Eventually(f, 20*time.Second, "the gateway routes to the product service", func() bool {
			status, _ := call(f, "GET", s.gateway+"/categories", "", "")
			return status == http.StatusOK
		})
	}
	return s
}

// head returns the event store's last position.
func (s *tbShop) head(tb testing.TB) int64 {
	tb.Helper()
	status, b := call(tb, "GET", s.feedURL, "", "")
	var page struct{ Head int64 }
	if status != 200 || json.Unmarshal(b, &page) != nil {
		tb.Fatalf("GET /events: got %d %s, want 200 with the head", status, b)
	}
	return page.Head
}

// create sends a manager's POST and returns the new resource's id.
func (s *tbShop) create(f testing.TB, path, body string) string {
	f.Helper()
	status, b := call(f, "POST", s.api+path, s.manager, body)
	var created struct{ ID string }
	if status != 201 || json.Unmarshal(b, &created) != nil {
		f.Fatalf("POST %s: got %d %s, want 201", path, status, b)
	}
	return created.ID
}

// fuzzWrite sends body to method url as a manager: the answer must be one of ok (or 400,
// 413) and never a 5xx; an answer of 400 or more must leave the event store as it was.
func (s *tbShop) fuzzWrite(t *testing.T, method, url string, body []byte, ok ...int) {
	before := s.head(t)
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+s.manager)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	var answer struct {
		Error  string            `json:"error"`
		Fields map[string]string `json:"fields"`
	}
	decodeErr := json.NewDecoder(resp.Body).Decode(&answer)
	resp.Body.Close()
	ok = append(ok, http.StatusBadRequest, http.StatusRequestEntityTooLarge)
	if !slices.Contains(ok, resp.StatusCode) {
		t.Fatalf("%s %s %q: got %d %+v, want one of %v", method, url, body, resp.StatusCode, answer, ok)
	}
	if decodeErr != nil {
		t.Fatalf("%s %s %q: got %d with a body that is not JSON: %v", method, url, body, resp.StatusCode, decodeErr)
	}
	if resp.StatusCode == http.StatusBadRequest && (answer.Error != "invalid input" || len(answer.Fields) == 0) {
		t.Fatalf("%s %q: got 400 %+v, want field errors", method, body, answer)
	}
	if resp.StatusCode >= 400 {
		if after := s.head(t); after != before {
			t.Fatalf("%s %q: got %d, and the event store's head moved from %d to %d", method, body, resp.StatusCode, before, after)
		}
	}
}

// The seed corpora are in testdata/fuzz/<name>/.

func FuzzAddCategory(f *testing.F) {
	s := startTBShop(f, false, testenv.Logger(f))
	f.Fuzz(func(t *testing.T, body []byte) {
		s.fuzzWrite(t, "POST", s.api+"/categories", body, http.StatusCreated, http.StatusConflict)
	})
}

func FuzzRenameCategory(f *testing.F) {
	s := startTBShop(f, false, testenv.Logger(f))
	id := s.create(f, "/categories", `{"name":"Beverages"}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		s.fuzzWrite(t, "PUT", s.api+"/categories/"+id, body, http.StatusOK, http.StatusConflict)
	})
}

// productBody turns the word CATEGORY in the fuzzer's input into the id of a real category, so
// that valid inputs are found.
func productBody(body []byte, category string) []byte {
	return bytes.ReplaceAll(body, []byte("CATEGORY"), []byte(category))
}

func FuzzAddProduct(f *testing.F) {
	s := startTBShop(f, false, testenv.Logger(f))
	cat := s.create(f, "/categories", `{"name":"Beverages"}`)
	f.Fuzz(func(t *testing.T, body []byte) {
		s.fuzzWrite(t, "POST", s.api+"/products", productBody(body, cat), http.StatusCreated)
	})
}

func FuzzUpdateProduct(f *testing.F) {
	s := startTBShop(f, false, testenv.Logger(f))
	cat := s.create(f, "/categories", `{"name":"Beverages"}`)
	id := s.create(f, "/products", fmt.Sprintf(`{"name":"Chai","category_id":%q,"price_cents":1800,"units_in_stock":39}`, cat))
	f.Fuzz(func(t *testing.T, body []byte) {
		s.fuzzWrite(t, "PUT", s.api+"/products/"+id, productBody(body, cat), http.StatusOK, http.StatusConflict)
	})
}
