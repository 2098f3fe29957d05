package systest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/msdemo/msdemo/internal/postgres"
	"github.com/msdemo/msdemo/internal/seed"
	"github.com/msdemo/msdemo/internal/testenv"
	"github.com/msdemo/msdemo/services/customer"
	"github.com/msdemo/msdemo/services/product"
	"github.com/msdemo/msdemo/systest"
)

func TestSeedLoadsTheDemoShopOnce(t *testing.T) {
	t.Parallel()
	sys := systest.Start(t)
	const adminPassword = "seed-test-admin-password"
	cust := customer.Config{Service: sys.ServiceConfig(t, "customer"), RedisURL: testenv.RedisURL(),
		KeyPrefix: sys.Name + ":customer:", DataDir: t.TempDir(), AdminPassword: adminPassword,
		Subscription: sys.Name + ".customer"}
	prod := product.Config{Service: sys.ServiceConfig(t, "product"), DBPath: filepath.Join(t.TempDir(), "product.db"),
		Subscription: sys.Name + ".product", PostgresURL: testenv.PostgresURL(), Database: testenv.DatabaseName(t, "product")}
	t.Cleanup(func() { _ = postgres.Drop(context.Background(), testenv.PostgresURL(), prod.Database) })
	testenv.Go(t, "customer", func(ctx context.Context) error { return customer.Run(ctx, cust, testenv.Logger(t)) })
	testenv.Go(t, "product", func(ctx context.Context) error { return product.Run(ctx, prod, testenv.Logger(t)) })
	testenv.WaitHealthy(t, "http://"+cust.Service.Addr+"/healthz", 30*time.Second)
	testenv.WaitHealthy(t, "http://"+prod.Service.Addr+"/healthz", 30*time.Second)
	t.Cleanup(func() {
		conn := testenv.Bus(t)
		for _, q := range []string{cust.Subscription, prod.Subscription} {
			_ = conn.DeleteQueue(context.Background(), q+".events")
			_ = conn.DeleteQueue(context.Background(), q+".events.dead")
		}
	})

	type seeded struct {
		Products []struct {
			Name    string
			Version int64
			Image   struct {
				ID  string
				URL string
			}
		} `json:"products"`
	}
	var first, products seeded
	for run := range 2 { // the second run finds everything there
		testenv.Eventually(t, 30*time.Second, "admin can log in", func() bool {
			return seed.Run(context.Background(), sys.GatewayURL, adminPassword, testenv.Logger(t)) == nil
		})
		if run == 0 {
			getJSON(t, sys.GatewayURL+"/product/products?limit=500", &first)
		}
	}
	getJSON(t, sys.GatewayURL+"/product/products?limit=500", &products)
	if len(products.Products) != 12 {
		t.Errorf("got %d products after seeding twice, want 12", len(products.Products))
	}
	// Every product has its picture, made once: the second run uploaded nothing.
	for i, p := range products.Products {
		if p.Image.ID == "" || i >= len(first.Products) || p != first.Products[i] {
			t.Errorf("product %s: got %+v after the second run, want a picture and what the first run left", p.Name, p)
			continue
		}
		resp, err := http.Get(sys.GatewayURL + p.Image.URL)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK || resp.Header.Get("Content-Type") != "image/jpeg" {
			t.Errorf("the picture of %s: got %d %s, want 200 image/jpeg", p.Name, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
	}
	var categories struct {
		Categories []struct{ Name string } `json:"categories"`
	}
	getJSON(t, sys.GatewayURL+"/product/categories", &categories)
	if len(categories.Categories) != 3 {
		t.Errorf("got %d categories, want 3", len(categories.Categories))
	}
	resp, err := http.Post(sys.GatewayURL+"/customer/login", "application/json",
		jsonBody(map[string]string{"username": "alice", "password": seed.DemoPassword}))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Errorf("demo customer alice cannot log in: %d", resp.StatusCode)
	}
}

func getJSON(t *testing.T, url string, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d", url, resp.StatusCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

func jsonBody(v any) io.Reader {
	b, _ := json.Marshal(v)
	return bytes.NewReader(b)
}
