package main

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/eventclient"
	"github.com/msdemo/msdemo/internal/registry"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/internal/web/webtest"
)

// The shop scaled out on one machine: two processes of every component of the REST API,
// the two event stores sharing one database (the embedded FerretDB on PostgreSQL), the
// services reading from either. A third of the way through the 200 contended orders, one
// gateway and one replica of each service are killed with SIGKILL, and a second later the
// event store that holds the writer lease: the other takes over. No oversell or overspend,
// every order decided, every read model equal to a rebuild (scarcityRun's checks), and the
// feed gap-free with no event stored twice.
func TestSagaWithReplicasAndEventStoreFailover(t *testing.T) {
	shared := testenv.PostgresDatabaseURL(t, "es")
	writer, standby := testenv.FreeAddr(t), testenv.FreeAddr(t)
	env := []string{"EVENTSTORE_POSTGRES_URL=" + shared, "EVENTSTORE_ADDR=" + writer,
		"EVENTSTORE_URL=http://" + writer + ",http://" + standby}

	var tookOver atomic.Int64 // nanoseconds
	scarcityRunOn(t, 20*time.Second, env, func(s *shop) {
		s.startReplicaAt("eventstore-2", registry.EventStore, standby)
		s.addGateway("gateway-2")
		for _, name := range []string{"customer", "product", "order", "accounting"} {
			s.startReplica(name+"-2", name)
		}
	}, func(s *shop) {
		for _, name := range []string{"gateway", "customer", "product", "order", "accounting"} {
			s.kill(name)
		}
		time.Sleep(time.Second)
		killed := time.Now()
		s.kill(registry.EventStore)
		go func() {
			// The standby says so in its log when it becomes the writer.
			for time.Since(killed) < 30*time.Second {
				if strings.Contains(s.outputOf("eventstore-2"), `"event store writer"`) {
					tookOver.Store(int64(time.Since(killed)))
					return
				}
				time.Sleep(50 * time.Millisecond)
			}
		}()
	})
	if tookOver.Load() == 0 {
		t.Errorf("the standby event store never logged that it became the writer")
	}
	t.Logf("the standby event store became the writer %s after the writer was killed",
		time.Duration(tookOver.Load()).Round(time.Millisecond))

	feed := eventclient.New(nil, "http://"+standby, "", "")
	ids := map[string]bool{}
	for after := int64(0); ; {
		page, err := feed.Feed(context.Background(), after, 1000, nil)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range page.Events {
			if e.Position != after+1 {
				t.Fatalf("the feed goes from position %d to %d", after, e.Position)
			}
			if ids[e.ID] {
				t.Fatalf("event %s is stored twice", e.ID)
			}
			ids[e.ID] = true
			after = e.Position
		}
		if after >= page.Head {
			break
		}
	}
	t.Logf("the feed holds positions 1 to %d, each event once", len(ids))
}

// addGateway starts another gateway process under key, with the shop's token key, waits
// until it routes every service, and makes call use it too.
func (s *shop) addGateway(key string) {
	s.t.Helper()
	addr := testenv.FreeAddr(s.t)
	s.startProcess(key, registry.Gateway, "GATEWAY_ADDR="+addr, "DATA_DIR="+s.newDataDir())
	testenv.WaitHealthy(s.t, "http://"+addr+"/healthz", 30*time.Second)
	s.waitRoutableAt("http://" + addr)
	s.mu.Lock()
	s.moreGateways = append(s.moreGateways, "http://"+addr)
	s.mu.Unlock()
}

// outputOf is what the process under key has written so far.
func (s *shop) outputOf(key string) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	if out := s.output[key]; out != nil {
		return out.String()
	}
	return ""
}

// Two processes of each site behind one session store: a user logged in on one follows
// orders live (SSE) on the other, which hears of them from the bus on its own queue, and
// goes on doing so after the first is killed (SIGKILL). A customer follows their own
// order placed through the storefront; a manager the order list, as a customer orders.
func TestSiteReplicasFollowOrdersLive(t *testing.T) {
	s := startShop(t, 10*time.Second, nil)
	productID := s.addTea(s.login("admin", adminPassword), 500, 10)
	customer := ""
	t.Run("storefront", func(t *testing.T) {
		followOnTheOtherReplica(t, s, registry.Storefront, "/events", func(b *webtest.Browser) {
			b.Post("/register", url.Values{"username": {"grace"}, "full_name": {"Grace Hopper"},
				"email": {"grace@example.com"}, "password": {"a long password"}}, nil)
		}, func(b *webtest.Browser) string {
			p := b.Post("/products/"+productID+"/order", url.Values{"quantity": {"1"}}, nil)
			id, ok := strings.CutPrefix(p.URL, "/orders/")
			if !ok {
				t.Fatalf("ordering led to %s, want an order's page", p.URL)
			}
			return id
		}, func(id string) string { return "order-detail-" + id })
		customer = s.login("grace", "a long password")
	})
	t.Run("admin", func(t *testing.T) {
		if customer == "" {
			t.Fatal("the storefront's step made no customer to order with")
		}
		followOnTheOtherReplica(t, s, registry.Admin, "/events/orders", func(b *webtest.Browser) {
			b.Post("/login", url.Values{"username": {"admin"}, "password": {adminPassword}}, nil)
		}, func(*webtest.Browser) string {
			var placed struct{ ID string }
			s.must(http.StatusAccepted, http.MethodPost, "/order/orders", customer, map[string]any{"product_id": productID, "quantity": 1}, &placed)
			return placed.ID
		}, func(id string) string { return "order-" + id })
	})
}

// followOnTheOtherReplica starts two processes of site, logs a browser in on the first,
// follows live path on the second with the same cookies (a load balancer sending the
// browser there), places an order with place (given the first, then the second replica's
// browser) and waits for the approval of it (the SSE event eventOf(id) with
// status-approved); then it kills the first process and does it again.
func followOnTheOtherReplica(t *testing.T, s *shop, site, live string, logIn func(*webtest.Browser),
	place func(*webtest.Browser) string, eventOf func(id string) string) {
	var urls [2]string
	for i := range urls {
		addr := testenv.FreeAddr(t)
		s.startProcess(fmt.Sprintf("%s-%d", site, i+1), site, strings.ToUpper(site)+"_ADDR="+addr, "GATEWAY_URL="+s.gateway)
		urls[i] = "http://" + addr
		testenv.WaitHealthy(t, urls[i]+"/healthz", 30*time.Second)
	}
	first := webtest.NewBrowser(t, urls[0])
	logIn(first)
	second := webtest.NewBrowser(t, urls[1])
	second.Client.Jar = first.Client.Jar

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	events := second.Events(ctx, live)
	waitApproved := func(id string) {
		t.Helper()
		for {
			select {
			case ev := <-events:
				if ev.Name == eventOf(id) && strings.Contains(ev.Data, "status-approved") {
					return
				}
			case <-ctx.Done():
				t.Fatalf("no approval of order %s over SSE from the other %s process", id, site)
			}
		}
	}
	waitApproved(place(first))
	s.kill(site + "-1")
	waitApproved(place(second))
}
