package main

import (
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/testenv"
)

// The shop split over two processes of -target lists, side by side on one machine with
// their own addresses: the event store and the gateway in one, the four services in the
// other, with their durable queues declared as quorum queues (RABBITMQ_QUEUE_TYPE, as the
// Kubernetes overlay sets it). An order is approved and invoiced across them, and again
// after the services' process was killed (SIGKILL) and started again.
func TestTwoProcessesOfTargetListsRunTheShop(t *testing.T) {
	t.Parallel()
	const services = "customer,product,order,accounting"
	s := startShop(t, 30*time.Second, []string{"RABBITMQ_QUEUE_TYPE=quorum"}, "eventstore,gateway", services)
	admin := s.login("admin", adminPassword)

	prodID := s.addTea(admin, 450, 10)
	s.must(http.StatusCreated, http.MethodPost, "/customer/users", "", map[string]string{
		"username": "dora", "full_name": "Dora Diaz", "email": "dora@example.com", "password": "dora-secret-password"}, nil)
	var credit struct {
		Version int64 `json:"version"`
	}
	s.must(http.StatusOK, http.MethodGet, "/customer/users/dora/credit", admin, nil, &credit)
	s.must(http.StatusOK, http.MethodPut, "/customer/users/dora/credit", admin,
		map[string]any{"credit_cents": 5000, "expected_version": credit.Version}, nil)
	dora := s.login("dora", "dora-secret-password")

	// orderApproved places an order of 2 and waits until it is approved and invoiced.
	orderApproved := func() {
		t.Helper()
		var o orderView
		s.must(http.StatusAccepted, http.MethodPost, "/order/orders", dora, map[string]any{"product_id": prodID, "quantity": 2}, &o)
		var got orderView
		testenv.Eventually(t, 30*time.Second, "the order approved and invoiced", func() bool {
			return s.call(http.MethodGet, "/order/orders/"+o.ID, dora, nil, &got) == http.StatusOK && got.Status == "approved" &&
				s.call(http.MethodGet, "/accounting/invoices/"+o.ID, dora, nil, nil) == http.StatusOK
		})
		if got.TotalCents != 900 {
			t.Errorf("order total: got %d cents, want 900", got.TotalCents)
		}
	}
	orderApproved()

	before := s.instances(admin)
	s.kill(services)
	s.start(services)
	for _, name := range []string{"customer", "product", "order", "accounting"} {
		testenv.WaitHealthy(t, s.urls[name]+"/healthz", 30*time.Second)
	}
	// The restarted services announce themselves at their old addresses; once the gateway
	// has heard them, it has dropped its connections to the killed process, and the first
	// write (an order, never sent twice) reaches the new one.
	testenv.Eventually(t, 15*time.Second, "the gateway hears the restarted services", func() bool {
		now := s.instances(admin)
		for name := range strings.SplitSeq(services, ",") {
			if len(now[name]) != 1 || slices.Equal(now[name], before[name]) {
				return false
			}
		}
		return true
	})
	orderApproved()
}

// instances returns the ids of the instances the gateway routes to, by service.
func (s *shop) instances(token string) map[string][]string {
	s.t.Helper()
	var reg struct {
		Instances []struct{ Service, Instance string } `json:"instances"`
	}
	s.must(http.StatusOK, http.MethodGet, "/registry", token, nil, &reg)
	ids := map[string][]string{}
	for _, in := range reg.Instances {
		ids[in.Service] = append(ids[in.Service], in.Instance)
	}
	return ids
}
