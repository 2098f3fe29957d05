package storefront

import (
	"cmp"
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/web"
)

func (s *server) nav(r *http.Request) templ.Component {
	u, ok := s.sessions.User(r.Context())
	return navBar(navView{Path: r.URL.Path, LoggedIn: ok, Username: u.Username})
}

// handleHome serves GET /: the categories.
func (s *server) handleHome(w http.ResponseWriter, r *http.Request) {
	cs, err := s.api.Categories(r.Context(), "")
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	s.site.Render(w, r, http.StatusOK, "Categories", homePage(homeView{Categories: cs}))
}

// handleCategory serves GET /categories/{id}: its products.
func (s *server) handleCategory(w http.ResponseWriter, r *http.Request) {
	c, err := s.api.Category(r.Context(), "", chi.URLParam(r, "id"))
	if err != nil {
		s.site.Error(w, r, web.NotFoundFor400(err))
		return
	}
	ps, _, err := s.api.Products(r.Context(), "", c.ID, "", web.MaxPage)
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	v := categoryView{Category: c}
	for _, p := range ps {
		v.Products = append(v.Products, productCard{ID: p.ID, Name: p.Name, Price: web.Money(p.PriceCents), InStock: p.UnitsInStock > 0})
	}
	s.site.Render(w, r, http.StatusOK, c.Name, categoryPage(v))
}

// handleProduct serves GET /products/{id}: the product and its order form.
func (s *server) handleProduct(w http.ResponseWriter, r *http.Request) {
	v, err := s.productView(r)
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	s.site.Render(w, r, http.StatusOK, v.Product.Name, productPage(v))
}

func (s *server) productView(r *http.Request) (productView, error) {
	p, err := s.api.Product(r.Context(), "", chi.URLParam(r, "id"))
	if err != nil {
		return productView{}, web.NotFoundFor400(err)
	}
	_, loggedIn := s.sessions.User(r.Context())
	v := productView{Product: p, Price: web.Money(p.PriceCents), LoggedIn: loggedIn, Quantity: "1",
		MaxQuantity: p.UnitsInStock, CategoryName: "Category"}
	if c, err := s.api.Category(r.Context(), "", p.CategoryID); err == nil {
		v.CategoryName = c.Name
	}
	return v, nil
}

// handleOrderPlace serves POST /products/{id}/order {quantity}: it places the order and
// redirects to its page, or shows the product again with what was wrong.
func (s *server) handleOrderPlace(w http.ResponseWriter, r *http.Request) {
	u, _ := s.sessions.User(r.Context())
	v, err := s.productView(r)
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	v.Quantity = strings.TrimSpace(r.PostFormValue("quantity"))
	qty, err := strconv.ParseInt(v.Quantity, 10, 64)
	switch {
	case err != nil || qty < 1:
		v.QuantityErr = "Enter a whole number of at least 1."
	case qty > v.MaxQuantity:
		v.QuantityErr = "Only " + strconv.FormatInt(v.MaxQuantity, 10) + " in stock."
	}
	if v.QuantityErr != "" {
		s.site.Render(w, r, http.StatusUnprocessableEntity, v.Product.Name, productPage(v))
		return
	}
	var placed struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	err = s.api.Post(r.Context(), u.Token, "/order/orders", map[string]any{"product_id": v.Product.ID, "quantity": qty}, &placed)
	if fields := web.FieldErrors(err); fields != nil {
		v.QuantityErr = fields["quantity"]
		v.FormError = web.FormMessage(err, fields, "quantity")
		s.site.Render(w, r, http.StatusUnprocessableEntity, v.Product.Name, productPage(v))
		return
	}
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	s.sessions.AddFlash(r.Context(), web.FlashSuccess, "Thank you! Your order is placed; its status updates below.")
	web.Redirect(w, r, "/orders/"+placed.ID)
}

// handleRegisterForm serves GET /register.
func (s *server) handleRegisterForm(w http.ResponseWriter, r *http.Request) {
	s.site.Render(w, r, http.StatusOK, "Register", registerPage(registerView{}))
}

// handleRegister serves POST /register: it creates the account, logs the user in and
// goes to the shop; invalid input shows the form again with the API's messages.
func (s *server) handleRegister(w http.ResponseWriter, r *http.Request) {
	v := registerView{Username: strings.TrimSpace(r.PostFormValue("username")),
		FullName: r.PostFormValue("full_name"), Email: r.PostFormValue("email")}
	password := r.PostFormValue("password")
	err := s.api.Post(r.Context(), "", "/customer/users", map[string]string{"username": v.Username,
		"full_name": v.FullName, "email": v.Email, "password": password}, nil)
	if fields := web.FieldErrors(err); fields != nil || web.StatusOf(err) == http.StatusConflict {
		v.Errors = fields
		if web.StatusOf(err) == http.StatusConflict {
			v.Errors = map[string]string{"username": "This username is taken; choose another."}
		}
		v.FormError = web.FormMessage(err, v.Errors, "username", "full_name", "email", "password")
		s.site.Render(w, r, http.StatusUnprocessableEntity, "Register", registerPage(v))
		return
	}
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	if err := web.LogIn(r.Context(), s.api, s.sessions, v.Username, password, "customer"); err != nil {
		s.site.Error(w, r, err)
		return
	}
	s.sessions.AddFlash(r.Context(), web.FlashSuccess, "Welcome, "+v.FullName+"! Your account is ready.")
	web.Redirect(w, r, "/")
}

// handleProfile serves GET /profile.
func (s *server) handleProfile(w http.ResponseWriter, r *http.Request) {
	u, _ := s.sessions.User(r.Context())
	p, err := s.api.Customer(r.Context(), u.Token, u.Username)
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	s.site.Render(w, r, http.StatusOK, "Profile", profilePage(profileView{Username: p.Username, FullName: p.FullName,
		Email: p.Email, Credit: web.Money(p.CreditCents), Version: p.Version}))
}

// handleProfileUpdate serves POST /profile {full_name, email, password, version}: an
// empty password keeps the old one; a change made meanwhile elsewhere is a conflict that
// shows the current profile again.
func (s *server) handleProfileUpdate(w http.ResponseWriter, r *http.Request) {
	u, _ := s.sessions.User(r.Context())
	change := map[string]any{"full_name": r.PostFormValue("full_name"), "email": r.PostFormValue("email")}
	if pw := r.PostFormValue("password"); pw != "" {
		change["password"] = pw
	}
	if v, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64); err == nil {
		change["expected_version"] = v
	}
	err := s.api.Put(r.Context(), u.Token, "/customer/users/"+u.Username, change, nil)
	if err == nil {
		s.sessions.AddFlash(r.Context(), web.FlashSuccess, "Your profile is saved.")
		web.Redirect(w, r, "/profile")
		return
	}
	fields, status := web.FieldErrors(err), web.StatusOf(err)
	if fields == nil && status != http.StatusConflict {
		s.site.Error(w, r, err)
		return
	}
	p, perr := s.api.Customer(r.Context(), u.Token, u.Username)
	if perr != nil {
		s.site.Error(w, r, perr)
		return
	}
	v := profileView{Username: p.Username, FullName: r.PostFormValue("full_name"), Email: r.PostFormValue("email"),
		Credit: web.Money(p.CreditCents), Version: p.Version, Errors: fields}
	if status == http.StatusConflict {
		v.FullName, v.Email = p.FullName, p.Email
		v.FormError = "Your profile was changed elsewhere meanwhile; this is the current one. Please make your change again."
	} else {
		v.FormError = web.FormMessage(err, fields, "full_name", "email", "password")
	}
	s.site.Render(w, r, http.StatusUnprocessableEntity, "Profile", profilePage(v))
}

// handleOrderList serves GET /orders[?after=]: a page of the customer's orders, newest
// first.
func (s *server) handleOrderList(w http.ResponseWriter, r *http.Request) {
	u, _ := s.sessions.User(r.Context())
	after := r.URL.Query().Get("after")
	orders, next, err := s.api.Orders(r.Context(), u.Token, "", after, pageSize)
	if err != nil {
		s.site.Error(w, r, web.NotFoundFor400(err))
		return
	}
	v := ordersView{Orders: web.OrderViews(r.Context(), s.api, orders), NextAfter: next, Paged: after != ""}
	s.site.Render(w, r, http.StatusOK, "My orders", ordersPage(v))
}

// handleOrderShow serves GET /orders/{id}.
func (s *server) handleOrderShow(w http.ResponseWriter, r *http.Request) {
	u, _ := s.sessions.User(r.Context())
	o, err := s.api.Order(r.Context(), u.Token, chi.URLParam(r, "id"))
	if err != nil {
		s.site.Error(w, r, web.NotFoundFor400(err))
		return
	}
	s.site.Render(w, r, http.StatusOK, "Order", orderPage(web.OrderViewOf(r.Context(), s.api, o)))
}

// handleInvoice serves GET /orders/{id}/invoice: printable.
func (s *server) handleInvoice(w http.ResponseWriter, r *http.Request) {
	u, _ := s.sessions.User(r.Context())
	id := chi.URLParam(r, "id")
	o, err := s.order(r.Context(), u.Token, id)
	if err != nil {
		s.site.Error(w, r, web.NotFoundFor400(err))
		return
	}
	var inv invoice
	if err := s.api.Get(r.Context(), u.Token, "/accounting/invoices/"+o.ID, nil, &inv); err != nil {
		if web.StatusOf(err) == http.StatusNotFound {
			s.sessions.AddFlash(r.Context(), web.FlashInfo, "The invoice of this order is not issued yet.")
			web.Redirect(w, r, "/orders/"+o.ID)
			return
		}
		s.site.Error(w, r, err)
		return
	}
	p, _ := s.api.Customer(r.Context(), u.Token, u.Username) // name and email are a courtesy
	qty := cmp.Or(inv.Quantity, o.Quantity)
	v := invoiceView{Number: cmp.Or(inv.Number, inv.ID, o.ID), OrderID: o.ID, Customer: cmp.Or(inv.Customer, o.Customer),
		FullName: p.FullName, Email: p.Email,
		Product:   cmp.Or(s.productNames(r.Context(), []order{o})[o.ProductID], o.ProductID),
		Quantity:  strconv.FormatInt(qty, 10),
		UnitPrice: web.Money(cmp.Or(inv.UnitPriceCents, o.UnitPriceCents)), Total: web.Money(cmp.Or(inv.TotalCents, o.TotalCents)),
		IssuedAt: web.FormatTime(inv.IssuedAt)}
	s.site.Render(w, r, http.StatusOK, "Invoice "+v.Number, invoicePage(v))
}

// newOrderView is web.NewOrderView, as the live views call it.
func newOrderView(o order, productName string) orderView { return web.NewOrderView(o, productName) }

// handleEvents serves GET /events: the customer's order updates as Server-Sent Events.
// For every event of one of their orders it sends "order-<id>" (the row of /orders) and
// "order-detail-<id>" (the body of /orders/{id}), rendered from the order as the API
// shows it once it has caught up with the event.
func (s *server) handleEvents(w http.ResponseWriter, r *http.Request) {
	u, _ := s.sessions.User(r.Context())
	f := &orderFollower{s: s, user: u, owned: map[string]bool{}, steps: map[string]int{}}
	events := s.hub.Subscribe(r.Context())
	web.ServeSSE(w, r, events, s.keepAlive, f.render, f.current(r.Context(), r.URL.Query().Get("order"))...)
}

// current renders what the page follows as it is now, for a stream that starts after the
// page was rendered (a decision may have come in between): the order of the order page
// (?order=<id>), or the rows of the orders page (no parameter).
func (f *orderFollower) current(ctx context.Context, id string) []web.SSEMessage {
	if id != "" {
		o, err := f.order(ctx, id)
		if err != nil {
			return nil // not the user's, or the API is down: events will tell
		}
		f.steps[id] = len(o.Timeline)
		v := newOrderView(o, f.s.productNames(ctx, []order{o})[o.ProductID])
		return []web.SSEMessage{{Event: "order-detail-" + id, HTML: orderDetail(v)}}
	}
	orders, err := f.s.orders(ctx, f.user.Token)
	if err != nil {
		return nil
	}
	names := f.s.productNames(ctx, orders)
	msgs := make([]web.SSEMessage, 0, len(orders))
	for _, o := range orders {
		f.owned[o.ID] = true
		msgs = append(msgs, web.SSEMessage{Event: "order-" + o.ID, HTML: orderCells(newOrderView(o, names[o.ProductID]))})
	}
	return msgs
}

// orderFollower decides, for one browser, which events concern the user's orders, and
// renders them. It remembers which orders are the user's (the API decides: another
// customer's order answers 403 or 404), so that most events cost no API call. It is used
// by one goroutine.
type orderFollower struct {
	s     *server
	user  web.User
	owned map[string]bool // order id → the user's
	steps map[string]int  // order id → timeline steps last sent
}

// order reads order id with the user's token; an order the user can read is theirs.
func (f *orderFollower) order(ctx context.Context, id string) (order, error) {
	o, err := f.s.order(ctx, f.user.Token, id)
	if err == nil {
		f.owned[id] = true
	}
	return o, err
}

func (f *orderFollower) render(ctx context.Context, e event.Stored) []web.SSEMessage {
	id, ok := web.OrderIDOf(e)
	if !ok {
		return nil
	}
	if e.Type == "order.placed" {
		var placed struct {
			Customer string `json:"customer"`
		}
		if json.Unmarshal(e.Data, &placed) == nil && placed.Customer != "" {
			f.owned[id] = placed.Customer == f.user.Username
		}
	}
	if mine, known := f.owned[id]; known && !mine {
		return nil
	}
	o, err := web.AwaitOrder(ctx, id, e, f.steps[id], f.order, func(err error) bool {
		status := web.StatusOf(err)
		if status == http.StatusForbidden || status == http.StatusNotFound && e.Type != "order.placed" {
			f.owned[id] = false // another customer's
			return true
		}
		return false
	})
	if err != nil {
		return nil
	}
	f.steps[id] = len(o.Timeline)
	v := newOrderView(o, f.s.productNames(ctx, []order{o})[o.ProductID])
	return []web.SSEMessage{{Event: "order-" + id, HTML: orderCells(v)}, {Event: "order-detail-" + id, HTML: orderDetail(v)}}
}
