// Package seed loads a small demo shop through the public REST API, as a manager and
// customers would with curl: a few categories, a dozen products with their pictures
// (drawn here, Picture: nothing is downloaded) and a few customers. It is what `msdemo
// seed` runs. Running it again adds only what is missing.
package seed

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"
)

type product struct {
	Name, Description, Supplier string
	PriceCents, Units           int64
}

// catalog is the demo catalog: category name -> products.
var catalog = map[string][]product{
	"Tea": {
		{"Sencha", "Steamed green tea from Shizuoka, grassy and bright.", "Uji Tea Co.", 1250, 40},
		{"Darjeeling First Flush", "Light, floral black tea from the spring harvest.", "Himalaya Leaf", 1890, 25},
		{"Earl Grey", "Black tea with bergamot oil.", "Harbour Teas", 950, 60},
		{"Rooibos", "Caffeine-free red bush from the Cederberg.", "Cape Leaf", 780, 50},
	},
	"Coffee": {
		{"Ethiopia Yirgacheffe", "Washed Arabica, notes of citrus and jasmine.", "Sidamo Growers", 1490, 30},
		{"Colombia Huila", "Medium roast, caramel and red apple.", "Andes Roasters", 1290, 35},
		{"Espresso Blend", "Dark roast for espresso, chocolate and hazelnut.", "Andes Roasters", 1190, 45},
		{"Decaf Mexico", "Mountain-water decaffeinated, mild and sweet.", "Oaxaca Co-op", 1350, 20},
	},
	"Accessories": {
		{"Glass Teapot", "800 ml borosilicate teapot with steel infuser.", "Kitchen Lab", 2490, 15},
		{"Pour-over Dripper", "Ceramic dripper, size 02.", "Kitchen Lab", 2190, 12},
		{"Burr Grinder", "Hand grinder with conical steel burrs.", "Grindworks", 4590, 8},
		{"Tea Tin", "Airtight tin for 100 g of leaves.", "Harbour Teas", 690, 80},
	},
}

// customers are the demo customers; their password is DemoPassword.
var customers = []struct{ Username, FullName, Email string }{
	{"alice", "Alice Martin", "alice@example.com"},
	{"bob", "Bob Okafor", "bob@example.com"},
	{"chen", "Chen Wei", "chen@example.com"},
}

// DemoPassword is the password of every demo customer.
const DemoPassword = "demo-password"

// Run seeds the shop behind gatewayURL, logging in as the manager "admin" with
// adminPassword. What exists already (by name) is left alone.
func Run(ctx context.Context, gatewayURL, adminPassword string, logger *slog.Logger) error {
	c := &client{base: strings.TrimRight(gatewayURL, "/"), http: &http.Client{Timeout: 30 * time.Second}}
	var login struct {
		Token string `json:"token"`
	}
	if err := c.do(ctx, http.MethodPost, "/customer/login", map[string]string{"username": "admin", "password": adminPassword}, &login, http.StatusOK); err != nil {
		return fmt.Errorf("log in as admin (MSDEMO_ADMIN_PASSWORD or DATA_DIR/admin-password): %w", err)
	}
	c.token = login.Token

	var existing struct {
		Categories []struct{ ID, Name string } `json:"categories"`
	}
	if err := c.do(ctx, http.MethodGet, "/product/categories", nil, &existing, http.StatusOK); err != nil {
		return err
	}
	categoryIDs := map[string]string{}
	for _, cat := range existing.Categories {
		categoryIDs[cat.Name] = cat.ID
	}
	for _, name := range []string{"Tea", "Coffee", "Accessories"} {
		if categoryIDs[name] == "" {
			var created struct{ ID string }
			if err := c.do(ctx, http.MethodPost, "/product/categories", map[string]string{"name": name}, &created, http.StatusCreated); err != nil {
				return err
			}
			categoryIDs[name] = created.ID
			logger.Info("seeded category", "name", name, "id", created.ID)
		}
		var products struct {
			Products []seededProduct `json:"products"`
		}
		if err := c.do(ctx, http.MethodGet, "/product/products?limit=500&category_id="+categoryIDs[name], nil, &products, http.StatusOK); err != nil {
			return err
		}
		have := map[string]seededProduct{}
		for _, p := range products.Products {
			have[p.Name] = p
		}
		for _, p := range catalog[name] {
			seeded, ok := have[p.Name]
			if !ok {
				body := map[string]any{"name": p.Name, "description": p.Description, "supplier": p.Supplier,
					"category_id": categoryIDs[name], "price_cents": p.PriceCents, "units_in_stock": p.Units}
				if err := c.do(ctx, http.MethodPost, "/product/products", body, &seeded, http.StatusCreated); err != nil {
					return err
				}
				logger.Info("seeded product", "name", p.Name)
			}
			if seeded.Image.ID == "" {
				if err := c.upload(ctx, "/product/products/"+seeded.ID+"/image", "image/jpeg", Picture(p.Name)); err != nil {
					return err
				}
				logger.Info("seeded the picture of a product", "name", p.Name)
			}
		}
	}
	for _, cu := range customers {
		body := map[string]string{"username": cu.Username, "full_name": cu.FullName, "email": cu.Email, "password": DemoPassword}
		err := c.do(ctx, http.MethodPost, "/customer/users", body, nil, http.StatusCreated)
		if err != nil && !strings.Contains(err.Error(), "409") {
			return err
		}
		if err == nil {
			logger.Info("seeded customer", "username", cu.Username)
		}
	}
	return nil
}

// seededProduct is what Run reads of a product.
type seededProduct struct {
	ID, Name string
	Image    struct{ ID string }
}

type client struct {
	base, token string
	http        *http.Client
}

// do sends a JSON request and decodes the answer into out; a status other than want is
// an error that quotes the answer.
func (c *client) do(ctx context.Context, method, path string, body, out any, want int) error {
	var raw []byte
	if body != nil {
		var err error
		if raw, err = json.Marshal(body); err != nil {
			return err
		}
	}
	return c.send(ctx, method, path, "application/json", raw, out, want)
}

// upload sends file, of contentType, with PUT path and wants 200.
func (c *client) upload(ctx context.Context, path, contentType string, file []byte) error {
	return c.send(ctx, http.MethodPut, path, contentType, file, nil, http.StatusOK)
}

// send is do with the body already encoded (nil: none).
func (c *client) send(ctx context.Context, method, path, contentType string, body []byte, out any, want int) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", contentType)
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s (GATEWAY_URL=%s): %w", method, path, c.base, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != want {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, strings.TrimSpace(string(raw)))
	}
	if out != nil {
		return json.Unmarshal(raw, out)
	}
	return nil
}
