package web

import (
	"context"
	"net/url"
	"strconv"
)

// The shop's resources as the sites show them, and the calls that read them
// (services/gateway/openapi.yaml). Order is in order.go. A call takes the bearer token of
// the user it is made for ("" for none: categories and products are public) and returns
// the API's errors as Client.Do does.

// MaxPage is the most items a page of a list of the API holds (a larger limit is
// refused).
const MaxPage = 500

// Category is a product category.
type Category struct {
	ID      string `json:"id"`
	Name    string `json:"name"`
	Version int64  `json:"version"`
}

// Product is a product of the catalog; its price is in cents. Image and Thumbnail are its
// pictures, zero when it has none.
type Product struct {
	ID           string   `json:"id"`
	Name         string   `json:"name"`
	Description  string   `json:"description"`
	Supplier     string   `json:"supplier"`
	CategoryID   string   `json:"category_id"`
	PriceCents   int64    `json:"price_cents"`
	UnitsInStock int64    `json:"units_in_stock"`
	Version      int64    `json:"version"`
	Image        ImageRef `json:"image"`
	Thumbnail    ImageRef `json:"thumbnail"`
}

// ImageRef is a product picture: its id (the SHA-256 of its bytes), which the sites serve
// at ImageURL, and its size in pixels. The zero ImageRef is no picture.
type ImageRef struct {
	ID     string `json:"id"`
	Width  int    `json:"width"`
	Height int    `json:"height"`
}

// Customer is a user's profile (GET /customer/users/{username}): a customer's own, or
// anyone's for a manager.
type Customer struct {
	Username    string `json:"username"`
	FullName    string `json:"full_name"`
	Email       string `json:"email"`
	Role        string `json:"role"`
	CreditCents int64  `json:"credit_cents"`
	Version     int64  `json:"version"`
}

// Categories returns every category (at most MaxPage).
func (c *Client) Categories(ctx context.Context, token string) ([]Category, error) {
	var page struct {
		Categories []Category `json:"categories"`
	}
	err := c.Get(ctx, token, "/product/categories", url.Values{"limit": {strconv.Itoa(MaxPage)}}, &page)
	return page.Categories, err
}

// Category returns category id.
func (c *Client) Category(ctx context.Context, token, id string) (Category, error) {
	var cat Category
	err := c.Get(ctx, token, "/product/categories/"+url.PathEscape(id), nil, &cat)
	return cat, err
}

// Products returns a page of at most limit products, of category categoryID ("" for
// all), in the order sort names ("" for by name; price; newest), after the product after
// ("" for the first page), and the after of the next page ("" on the last).
func (c *Client) Products(ctx context.Context, token, categoryID, sort, after string, limit int) ([]Product, string, error) {
	var page struct {
		Products  []Product `json:"products"`
		NextAfter string    `json:"next_after"`
	}
	q := pageQuery(after, limit, "category_id", categoryID)
	if sort != "" {
		q.Set("sort", sort)
	}
	err := c.Get(ctx, token, "/product/products", q, &page)
	return page.Products, page.NextAfter, err
}

// SearchProducts returns a page of limit products matching the words of q, best first,
// from offset, and the offset of the next page (0 on the last).
func (c *Client) SearchProducts(ctx context.Context, token, q string, offset, limit int) ([]Product, int, error) {
	var page struct {
		Products   []Product `json:"products"`
		NextOffset int       `json:"next_offset"`
	}
	query := url.Values{"q": {q}, "limit": {strconv.Itoa(limit)}, "offset": {strconv.Itoa(offset)}}
	err := c.Get(ctx, token, "/product/search", query, &page)
	return page.Products, page.NextOffset, err
}

// Product returns product id.
func (c *Client) Product(ctx context.Context, token, id string) (Product, error) {
	var p Product
	err := c.Get(ctx, token, "/product/products/"+url.PathEscape(id), nil, &p)
	return p, err
}

// Customer returns the profile of username.
func (c *Client) Customer(ctx context.Context, token, username string) (Customer, error) {
	var cu Customer
	err := c.Get(ctx, token, "/customer/users/"+url.PathEscape(username), nil, &cu)
	return cu, err
}

// Order returns order id with its timeline, if token may see it (its customer's or a
// manager's): another customer's order is an APIError of 403 or 404.
func (c *Client) Order(ctx context.Context, token, id string) (Order, error) {
	var o Order
	err := c.Get(ctx, token, "/order/orders/"+url.PathEscape(id), nil, &o)
	return o, err
}

// Orders returns a page of at most limit orders that token may see (a customer's own, a
// manager's every order), newest first and without timelines, of status ("" for any),
// after the order after ("" for the first page), and the after of the next page ("" on
// the last).
func (c *Client) Orders(ctx context.Context, token, status, after string, limit int) ([]Order, string, error) {
	var page struct {
		Orders    []Order `json:"orders"`
		NextAfter string  `json:"next_after"`
	}
	err := c.Get(ctx, token, "/order/orders", pageQuery(after, limit, "status", status), &page)
	return page.Orders, page.NextAfter, err
}

// ProductNames returns the names of the products of the lines that carry no name (of
// orders placed before orders kept names), by id, reading each product once; a product
// that cannot be read (deleted, or the service is down) has the name "", so that it is
// shown by its id.
func (c *Client) ProductNames(ctx context.Context, lines []OrderLine) map[string]string {
	names := map[string]string{}
	for _, l := range lines {
		if _, ok := names[l.ProductID]; ok || l.ProductID == "" || l.Name != "" {
			continue
		}
		names[l.ProductID] = ""
		if p, err := c.Product(ctx, "", l.ProductID); err == nil {
			names[l.ProductID] = p.Name
		}
	}
	return names
}

// pageQuery is the query of a page of a list: limit, after (if any) and the filter key
// (if value is not "").
func pageQuery(after string, limit int, key, value string) url.Values {
	q := url.Values{"limit": {strconv.Itoa(limit)}}
	if after != "" {
		q.Set("after", after)
	}
	if value != "" {
		q.Set(key, value)
	}
	return q
}
