package storefront

import (
	"cmp"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/a-h/templ"
	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/web"
)

func (s *server) nav(r *http.Request) templ.Component {
	u, ok := s.sessions.User(r.Context())
	v := navView{Path: r.URL.Path, LoggedIn: ok, Username: u.Username}
	if ok {
		var c cart
		if err := s.api.Get(r.Context(), u.Token, "/order/cart", nil, &c); err == nil {
			v.CartUnits = c.units()
		}
	}
	return navBar(v)
}

// newestOnHome is how many of the newest products the home page shows.
const newestOnHome = 6

// handleHome serves GET /: the categories.
func (s *server) handleHome(w http.ResponseWriter, r *http.Request) {
	cs, err := s.api.Categories(r.Context(), "")
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	newest, _, err := s.api.Products(r.Context(), "", "", "newest", "", newestOnHome)
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	s.site.Render(w, r, http.StatusOK, "Categories", homePage(homeView{Categories: cs, Newest: productCards(newest)}))
}

// handleCategory serves GET /categories/{id}: its products.
func (s *server) handleCategory(w http.ResponseWriter, r *http.Request) {
	c, err := s.api.Category(r.Context(), "", chi.URLParam(r, "id"))
	if err != nil {
		s.site.Error(w, r, web.NotFoundFor400(err))
		return
	}
	sort := r.URL.Query().Get("sort")
	if sort != "price" {
		sort = "name"
	}
	ps, _, err := s.api.Products(r.Context(), "", c.ID, sort, "", web.MaxPage)
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	s.site.Render(w, r, http.StatusOK, c.Name, categoryPage(categoryView{Category: c, Sort: sort, Products: productCards(ps)}))
}

func productCards(ps []web.Product) []productCard {
	var cards []productCard
	for _, p := range ps {
		cards = append(cards, productCard{ID: p.ID, Name: p.Name, Price: web.Money(p.PriceCents), InStock: p.UnitsInStock > 0,
			Thumbnail: p.Thumbnail})
	}
	return cards
}

// searchPageSize is how many results a page of the search shows.
const searchPageSize = 24

// handleSearch serves GET /search?q=words[&offset=]: the products matching every word,
// best first. A query the product service refuses (no word, too long) is shown with why.
func (s *server) handleSearch(w http.ResponseWriter, r *http.Request) {
	q := strings.TrimSpace(r.URL.Query().Get("q"))
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	v := searchView{Query: q}
	if q == "" {
		s.site.Render(w, r, http.StatusOK, "Search", searchPage(v))
		return
	}
	ps, next, err := s.api.SearchProducts(r.Context(), "", q, max(offset, 0), searchPageSize)
	if fields := web.FieldErrors(err); fields != nil {
		if why := cmp.Or(fields["q"], fields["offset"]); why != "" {
			v.Problem = "The search " + why + "."
		} else {
			v.Problem = web.FormMessage(err, fields)
		}
		s.site.Render(w, r, http.StatusUnprocessableEntity, "Search", searchPage(v))
		return
	}
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	v.Products = productCards(ps)
	if next > 0 {
		v.Next = "/search?" + url.Values{"q": {q}, "offset": {strconv.Itoa(next)}}.Encode()
	}
	s.site.Render(w, r, http.StatusOK, "Search: "+q, searchPage(v))
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

// productForm reads the product page's form (quantity: at least 1, at most the units in
// stock) and returns the page's view and the quantity; when the product cannot be read
// or the quantity is wrong it answers (the error, or the page again with what was wrong)
// and ok is false.
func (s *server) productForm(w http.ResponseWriter, r *http.Request) (v productView, qty int64, ok bool) {
	v, err := s.productView(r)
	if err != nil {
		s.site.Error(w, r, err)
		return v, 0, false
	}
	v.Quantity = strings.TrimSpace(r.PostFormValue("quantity"))
	qty, err = strconv.ParseInt(v.Quantity, 10, 64)
	switch {
	case err != nil || qty < 1:
		v.QuantityErr = "Enter a whole number of at least 1."
	case qty > v.MaxQuantity:
		v.QuantityErr = "Only " + strconv.FormatInt(v.MaxQuantity, 10) + " in stock."
	}
	if v.QuantityErr != "" {
		s.site.Render(w, r, http.StatusUnprocessableEntity, v.Product.Name, productPage(v))
		return v, 0, false
	}
	return v, qty, true
}

// postProductForm POSTs in to the API at path as the user, for the product page v, and
// decodes the answer into out. It reports whether that succeeded; if not, it has
// answered: the product page again with the API's field errors, or the error page.
func (s *server) postProductForm(w http.ResponseWriter, r *http.Request, v productView, path string, in, out any) bool {
	u, _ := s.sessions.User(r.Context())
	err := s.api.Post(r.Context(), u.Token, path, in, out)
	if fields := web.FieldErrors(err); fields != nil {
		v.QuantityErr = fields["quantity"]
		v.FormError = web.FormMessage(err, fields, "quantity")
		s.site.Render(w, r, http.StatusUnprocessableEntity, v.Product.Name, productPage(v))
		return false
	}
	if err != nil {
		s.site.Error(w, r, err)
		return false
	}
	return true
}

// handleOrderPlace serves POST /products/{id}/order {quantity}: it places the order and
// redirects to its page, or shows the product again with what was wrong.
func (s *server) handleOrderPlace(w http.ResponseWriter, r *http.Request) {
	v, qty, ok := s.productForm(w, r)
	if !ok {
		return
	}
	var placed struct {
		ID     string `json:"id"`
		Status string `json:"status"`
	}
	if !s.postProductForm(w, r, v, "/order/orders", map[string]any{"product_id": v.Product.ID, "quantity": qty}, &placed) {
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
	ctx := web.WithClientAddress(r.Context(), r) // the rate limits count the browser's address
	err := s.api.Post(ctx, "", "/customer/users", map[string]string{"username": v.Username,
		"full_name": v.FullName, "email": v.Email, "password": password}, nil)
	if web.StatusOf(err) == http.StatusTooManyRequests {
		v.FormError = web.TooManyMessage(err)
		w.Header().Set("Retry-After", web.RetryAfter(err))
		s.site.Render(w, r, http.StatusTooManyRequests, "Register", registerPage(v))
		return
	}
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
	if err := web.LogIn(ctx, s.api, s.sessions, v.Username, password, "customer"); err != nil {
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

// handleProfileUpdate serves POST /profile {full_name, email, password,
// current_password, version}: an empty password keeps the old one; a new one needs the
// current one, logs out every other session of the user, and keeps this one (with the
// new token the API answers); a change made meanwhile elsewhere is a conflict that
// shows the current profile again; too many wrong current passwords are refused for a
// while (429).
func (s *server) handleProfileUpdate(w http.ResponseWriter, r *http.Request) {
	u, _ := s.sessions.User(r.Context())
	change := map[string]any{"full_name": r.PostFormValue("full_name"), "email": r.PostFormValue("email")}
	if pw := r.PostFormValue("password"); pw != "" {
		change["password"] = pw
		change["current_password"] = r.PostFormValue("current_password")
	}
	if v, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64); err == nil {
		change["expected_version"] = v
	}
	var answer struct {
		*web.NewToken
	}
	ctx := web.WithClientAddress(r.Context(), r) // a wrong current password counts as a failed login
	err := s.api.Put(ctx, u.Token, "/customer/users/"+u.Username, change, &answer)
	if err == nil {
		saved := "Your profile is saved."
		if answer.NewToken != nil && answer.Token != "" {
			if err := s.sessions.Login(r.Context(), answer.User(u.Username)); err != nil {
				s.site.Error(w, r, err)
				return
			}
			saved = "Your profile is saved and your password is changed; your other sessions are logged out."
		}
		s.sessions.AddFlash(r.Context(), web.FlashSuccess, saved)
		web.Redirect(w, r, "/profile")
		return
	}
	fields, status := web.FieldErrors(err), web.StatusOf(err)
	if fields == nil && status != http.StatusConflict && status != http.StatusTooManyRequests {
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
	switch status {
	case http.StatusConflict:
		v.FullName, v.Email = p.FullName, p.Email
		v.FormError = "Your profile was changed elsewhere meanwhile; this is the current one. Please make your change again."
	case http.StatusTooManyRequests:
		v.FormError = web.TooManyMessage(err)
		w.Header().Set("Retry-After", web.RetryAfter(err))
	default:
		status = http.StatusUnprocessableEntity
		v.FormError = web.FormMessage(err, fields, "full_name", "email", "password", "current_password")
	}
	if status == http.StatusConflict {
		status = http.StatusUnprocessableEntity
	}
	s.site.Render(w, r, status, "Profile", profilePage(v))
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
	o, err := s.api.Order(r.Context(), u.Token, id)
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
	v := invoiceView{Number: cmp.Or(inv.Number, inv.ID, o.ID), OrderID: o.ID, Customer: cmp.Or(inv.Customer, o.Customer),
		FullName: p.FullName, Email: p.Email, Total: web.Money(cmp.Or(inv.TotalCents, o.TotalCents)),
		IssuedAt: web.FormatTime(inv.IssuedAt)}
	lines := inv.Lines
	if len(lines) == 0 {
		lines = o.Lines
	}
	v.Lines = web.LineViews(lines, s.api.ProductNames(r.Context(), lines))
	s.site.Render(w, r, http.StatusOK, "Invoice "+v.Number, invoicePage(v))
}

// handleEvents serves GET /events: the customer's orders as they change, as Server-Sent
// Events pushed by the site's follower (web.Hub.Follow) when the order service announces
// a change: for each changed order of theirs "order-<id>" (the row of /orders) and
// "order-detail-<id>" (the body of /orders/{id}). The follower sends a customer only
// changes whose owner they are, and reads an order with the token of one of its owner's
// browsers, once for all of them.
//
// The stream starts with what the page follows as it is now (a decision may have come
// between the page's render and the stream's start): the order of the order page
// (?order=<id>), or the rows of the orders page (no parameter).
func (s *server) handleEvents(w http.ResponseWriter, r *http.Request) {
	u, _ := s.sessions.User(r.Context())
	who := web.Follow{ID: r.URL.Query().Get("order"), Owner: u.Username}
	out := s.hub.Follow(r.Context(), web.FollowOrders(s.api, u.Token, who, pageSize,
		web.OrderFragments{Cells: orderCells, Detail: orderDetail}))
	web.ServeSSE(w, r, out, s.keepAlive)
}
