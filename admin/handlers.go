package admin

import (
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
	return navBar(navView{Path: r.URL.Path, LoggedIn: ok && u.Role == "manager", Username: u.Username})
}

// token is the logged-in manager's API token (the routes behind RequireUser have one).
func (s *server) token(r *http.Request) string {
	u, _ := s.sessions.User(r.Context())
	return u.Token
}

// feedSize is how many events the dashboard's live feed keeps.
const feedSize = 50

// handleDashboard serves GET /: revenue, order counts by status and the latest events,
// newest first, which /events/feed extends live.
func (s *server) handleDashboard(w http.ResponseWriter, r *http.Request) {
	ctx, token := r.Context(), s.token(r)
	var v dashboardView
	var rev revenue
	if err := s.api.Get(ctx, token, "/accounting/revenue", nil, &rev); err != nil {
		s.site.Error(w, r, err)
		return
	}
	v.Revenue, v.Invoices = web.Money(rev.RevenueCents), strconv.FormatInt(rev.Invoices, 10)
	for _, status := range []string{"pending", "approved", "rejected"} {
		n, err := s.orderCount(ctx, token, status)
		if err != nil {
			s.site.Error(w, r, err)
			return
		}
		v.Counts = append(v.Counts, statusCount{Status: status, Count: n})
	}
	feed, err := s.latest(ctx, token, feedSize)
	if err != nil {
		if web.StatusOf(err) != http.StatusServiceUnavailable {
			s.site.Error(w, r, err)
			return
		}
		s.logger.WarnContext(ctx, "dashboard without past events", "error", err)
		v.FeedError = "The event store does not answer right now: new events still appear below as they happen."
	}
	for i := len(feed.Events) - 1; i >= 0; i-- {
		v.Events = append(v.Events, newEventRow(feed.Events[i]))
	}
	s.site.Render(w, r, http.StatusOK, "Dashboard", dashboardPage(v))
}

// handleCategories serves GET /categories.
func (s *server) handleCategories(w http.ResponseWriter, r *http.Request) {
	s.renderCategories(w, r, http.StatusOK, categoriesView{})
}

func (s *server) renderCategories(w http.ResponseWriter, r *http.Request, status int, v categoriesView) {
	cs, err := s.api.Categories(r.Context(), s.token(r))
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	v.Categories = cs
	s.site.Render(w, r, status, "Categories", categoriesPage(v))
}

// handleCategoryAdd serves POST /categories {name}.
func (s *server) handleCategoryAdd(w http.ResponseWriter, r *http.Request) {
	name := strings.TrimSpace(r.PostFormValue("name"))
	var c web.Category
	err := s.api.Post(r.Context(), s.token(r), "/product/categories", map[string]string{"name": name}, &c)
	if fields := web.FieldErrors(err); fields != nil || web.StatusOf(err) == http.StatusConflict {
		v := categoriesView{NewName: name, NewError: fields["name"], FormError: web.FormMessage(err, fields, "name")}
		s.renderCategories(w, r, http.StatusUnprocessableEntity, v)
		return
	}
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	s.sessions.AddFlash(r.Context(), web.FlashSuccess, "Category “"+c.Name+"” added.")
	web.Redirect(w, r, "/categories")
}

// handleCategoryRename serves POST /categories/{id} {name, version}.
func (s *server) handleCategoryRename(w http.ResponseWriter, r *http.Request) {
	id, name := chi.URLParam(r, "id"), strings.TrimSpace(r.PostFormValue("name"))
	change := map[string]any{"name": name}
	if v, err := strconv.ParseInt(r.PostFormValue("version"), 10, 64); err == nil {
		change["expected_version"] = v
	}
	err := s.api.Put(r.Context(), s.token(r), "/product/categories/"+url.PathEscape(id), change, nil)
	switch fields, status := web.FieldErrors(err), web.StatusOf(err); {
	case err == nil:
		s.sessions.AddFlash(r.Context(), web.FlashSuccess, "Category renamed to “"+name+"”.")
		web.Redirect(w, r, "/categories")
	case fields != nil:
		s.renderCategories(w, r, http.StatusUnprocessableEntity, categoriesView{EditID: id, EditName: name,
			EditError: fields["name"], FormError: web.FormMessage(err, fields, "name")})
	case status == http.StatusConflict:
		s.renderCategories(w, r, http.StatusConflict, categoriesView{
			FormError: "This category was changed meanwhile (" + web.APIMessage(err, "conflict") + "). Its current name is shown; rename it again if you still want to."})
	default:
		s.site.Error(w, r, web.NotFoundFor400(err))
	}
}

// handleCategoryDelete serves POST /categories/{id}/delete; a category that still has
// products is refused by the API (409), which the page shows.
func (s *server) handleCategoryDelete(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	err := s.api.Do(r.Context(), s.token(r), http.MethodDelete, "/product/categories/"+url.PathEscape(id), nil, nil)
	switch web.StatusOf(err) {
	case http.StatusConflict:
		s.renderCategories(w, r, http.StatusConflict, categoriesView{
			FormError: "This category cannot be deleted: " + web.APIMessage(err, "it still has products") + ". Move or delete its products first."})
		return
	case http.StatusNotFound, http.StatusBadRequest:
		s.sessions.AddFlash(r.Context(), web.FlashInfo, "That category was already deleted.")
	default:
		if err != nil {
			s.site.Error(w, r, err)
			return
		}
		s.sessions.AddFlash(r.Context(), web.FlashSuccess, "Category deleted.")
	}
	web.Redirect(w, r, "/categories")
}

// handleProducts serves GET /products[?after=]: a page of products by id.
func (s *server) handleProducts(w http.ResponseWriter, r *http.Request) {
	ctx, token := r.Context(), s.token(r)
	after := r.URL.Query().Get("after")
	products, next, err := s.api.Products(ctx, token, "", "", after, pageSize)
	if err != nil {
		s.site.Error(w, r, web.NotFoundFor400(err))
		return
	}
	cs, err := s.api.Categories(ctx, token)
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	names := map[string]string{}
	for _, c := range cs {
		names[c.ID] = c.Name
	}
	v := productsView{NextAfter: next, Paged: after != ""}
	for _, p := range products {
		v.Products = append(v.Products, productRow{ID: p.ID, Name: p.Name, Category: names[p.CategoryID],
			Price: web.Money(p.PriceCents), Stock: strconv.FormatInt(p.UnitsInStock, 10), Version: strconv.FormatInt(p.Version, 10)})
	}
	s.site.Render(w, r, http.StatusOK, "Products", productsPage(v))
}

// productFormFrom reads the product form of r.
func productFormFrom(r *http.Request) productForm {
	return productForm{Name: strings.TrimSpace(r.PostFormValue("name")), Description: r.PostFormValue("description"),
		Supplier: r.PostFormValue("supplier"), CategoryID: r.PostFormValue("category_id"),
		Price: strings.TrimSpace(r.PostFormValue("price")), Stock: strings.TrimSpace(r.PostFormValue("units_in_stock")),
		Version: r.PostFormValue("version"), Errors: map[string]string{}}
}

func formOfProduct(p web.Product) productForm {
	return productForm{ID: p.ID, Name: p.Name, Description: p.Description, Supplier: p.Supplier, CategoryID: p.CategoryID,
		Price: amount(p.PriceCents), Stock: strconv.FormatInt(p.UnitsInStock, 10), Version: strconv.FormatInt(p.Version, 10),
		Image: p.Image, imageRead: true}
}

// input turns the form into the API's ProductInput, or marks the fields it cannot read.
func (f *productForm) input() (map[string]any, bool) {
	in := map[string]any{"name": f.Name, "description": f.Description, "supplier": f.Supplier, "category_id": f.CategoryID}
	if f.Errors == nil {
		f.Errors = map[string]string{}
	}
	if cents, ok := parseMoney(f.Price); ok {
		in["price_cents"] = cents
	} else {
		f.Errors["price"] = "Enter a price such as 24.99."
	}
	if n, err := strconv.ParseInt(f.Stock, 10, 64); err == nil && n >= 0 {
		in["units_in_stock"] = n
	} else {
		f.Errors["units_in_stock"] = "Enter a whole number, 0 or more."
	}
	if v, err := strconv.ParseInt(f.Version, 10, 64); err == nil {
		in["expected_version"] = v
	}
	return in, len(f.Errors) == 0
}

// apiFieldErrors moves the API's field errors onto the form's fields.
func (f *productForm) apiFieldErrors(fields map[string]string) {
	for k, msg := range fields {
		switch k {
		case "price_cents":
			k = "price"
		case "expected_version":
			continue
		}
		f.Errors[k] = msg
	}
}

func (s *server) renderProductForm(w http.ResponseWriter, r *http.Request, status int, f productForm) {
	cs, err := s.api.Categories(r.Context(), s.token(r))
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	f.Categories = cs
	if f.ID != "" && !f.imageRead { // a form posted back: its picture is the product's
		if p, err := s.api.Product(r.Context(), s.token(r), f.ID); err == nil {
			f.Image = p.Image
		}
	}
	title := "New product"
	if f.ID != "" {
		title = "Edit " + f.Name
	}
	s.site.Render(w, r, status, title, productFormPage(f))
}

// handleProductNew serves GET /products/new[?category_id=].
func (s *server) handleProductNew(w http.ResponseWriter, r *http.Request) {
	s.renderProductForm(w, r, http.StatusOK, productForm{CategoryID: r.URL.Query().Get("category_id"), Stock: "0"})
}

// handleProductAdd serves POST /products.
func (s *server) handleProductAdd(w http.ResponseWriter, r *http.Request) {
	f := productFormFrom(r)
	f.Version = ""
	in, ok := f.input()
	if !ok {
		f.FormError = "Please correct the marked fields."
		s.renderProductForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	var p web.Product
	err := s.api.Post(r.Context(), s.token(r), "/product/products", in, &p)
	if fields := web.FieldErrors(err); fields != nil || web.StatusOf(err) == http.StatusConflict {
		f.apiFieldErrors(fields)
		f.FormError = web.FormMessage(err, f.Errors, "name", "description", "supplier", "category_id", "price", "units_in_stock")
		s.renderProductForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	if err != nil {
		s.site.Error(w, r, err)
		return
	}
	s.sessions.AddFlash(r.Context(), web.FlashSuccess, "Product “"+p.Name+"” added.")
	web.Redirect(w, r, "/products")
}

// handleProductEdit serves GET /products/{id}: the edit form with the product's version.
func (s *server) handleProductEdit(w http.ResponseWriter, r *http.Request) {
	p, err := s.api.Product(r.Context(), s.token(r), chi.URLParam(r, "id"))
	if err != nil {
		s.site.Error(w, r, web.NotFoundFor400(err))
		return
	}
	s.renderProductForm(w, r, http.StatusOK, formOfProduct(p))
}

// handleProductUpdate serves POST /products/{id} with the version the form was made from.
// If the product changed meanwhile (409), the form shows the current values and version,
// and the message lists what the manager had typed, so they can decide again.
func (s *server) handleProductUpdate(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	f := productFormFrom(r)
	f.ID = id
	in, ok := f.input()
	if !ok {
		f.FormError = "Please correct the marked fields."
		s.renderProductForm(w, r, http.StatusUnprocessableEntity, f)
		return
	}
	var p web.Product
	err := s.api.Put(r.Context(), s.token(r), "/product/products/"+url.PathEscape(id), in, &p)
	switch fields, status := web.FieldErrors(err), web.StatusOf(err); {
	case err == nil:
		s.sessions.AddFlash(r.Context(), web.FlashSuccess, "Product “"+p.Name+"” saved.")
		web.Redirect(w, r, "/products")
	case fields != nil:
		f.apiFieldErrors(fields)
		f.FormError = web.FormMessage(err, f.Errors, "name", "description", "supplier", "category_id", "price", "units_in_stock")
		s.renderProductForm(w, r, http.StatusUnprocessableEntity, f)
	case status == http.StatusConflict:
		current, err := s.api.Product(r.Context(), s.token(r), id)
		if err != nil {
			s.site.Error(w, r, web.NotFoundFor400(err))
			return
		}
		typed := f
		f = formOfProduct(current)
		f.Conflict = &typed
		s.renderProductForm(w, r, http.StatusConflict, f)
	default:
		s.site.Error(w, r, web.NotFoundFor400(err))
	}
}

// handleProductDelete serves POST /products/{id}/delete.
func (s *server) handleProductDelete(w http.ResponseWriter, r *http.Request) {
	err := s.api.Do(r.Context(), s.token(r), http.MethodDelete, "/product/products/"+url.PathEscape(chi.URLParam(r, "id")), nil, nil)
	switch web.StatusOf(err) {
	case http.StatusNotFound, http.StatusBadRequest:
		s.sessions.AddFlash(r.Context(), web.FlashInfo, "That product was already deleted.")
	case http.StatusConflict:
		s.sessions.AddFlash(r.Context(), web.FlashError, "The product cannot be deleted: "+web.APIMessage(err, "conflict")+".")
	default:
		if err != nil {
			s.site.Error(w, r, err)
			return
		}
		s.sessions.AddFlash(r.Context(), web.FlashSuccess, "Product deleted.")
	}
	web.Redirect(w, r, "/products")
}

// handleCustomers serves GET /customers[?after=]: a page of customers with their credit.
func (s *server) handleCustomers(w http.ResponseWriter, r *http.Request) {
	q := url.Values{"limit": {strconv.Itoa(pageSize)}}
	after := r.URL.Query().Get("after")
	if after != "" {
		q.Set("after", after)
	}
	var page struct {
		Customers []web.Customer `json:"customers"`
		Users     []web.Customer `json:"users"` // what the customer service answers
		NextAfter string         `json:"next_after"`
	}
	if err := s.api.Get(r.Context(), s.token(r), "/customer/users", q, &page); err != nil {
		s.site.Error(w, r, web.NotFoundFor400(err))
		return
	}
	v := customersView{NextAfter: page.NextAfter, Paged: after != ""}
	for _, c := range append(page.Customers, page.Users...) {
		v.Customers = append(v.Customers, customerRow{Username: c.Username, FullName: c.FullName, Email: c.Email,
			Role: c.Role, Credit: web.Money(c.CreditCents)})
	}
	s.site.Render(w, r, http.StatusOK, "Customers", customersPage(v))
}

// handleCustomer serves GET /customers/{username}: the profile and the credit form.
func (s *server) handleCustomer(w http.ResponseWriter, r *http.Request) {
	v, err := s.customerView(r, chi.URLParam(r, "username"))
	if err != nil {
		s.site.Error(w, r, web.NotFoundFor400(err))
		return
	}
	s.site.Render(w, r, http.StatusOK, v.Customer.Username, customerPage(v))
}

func (s *server) customerView(r *http.Request, username string) (customerView, error) {
	c, err := s.api.Customer(r.Context(), s.token(r), username)
	if err != nil {
		return customerView{}, err
	}
	var cr credit
	if err := s.api.Get(r.Context(), s.token(r), "/customer/users/"+url.PathEscape(username)+"/credit", nil, &cr); err != nil {
		return customerView{}, err
	}
	return customerView{Customer: c, Credit: web.Money(cr.CreditCents), Amount: amount(cr.CreditCents),
		Version: strconv.FormatInt(cr.Version, 10)}, nil
}

// handleCreditSet serves POST /customers/{username}/credit {credit, version}: a change
// made meanwhile (409) shows the current credit with a message.
func (s *server) handleCreditSet(w http.ResponseWriter, r *http.Request) {
	username := chi.URLParam(r, "username")
	typed := strings.TrimSpace(r.PostFormValue("credit"))
	cents, ok := parseMoney(typed)
	var err error
	if ok {
		version, _ := strconv.ParseInt(r.PostFormValue("version"), 10, 64)
		err = s.api.Put(r.Context(), s.token(r), "/customer/users/"+url.PathEscape(username)+"/credit",
			map[string]int64{"credit_cents": cents, "expected_version": version}, nil)
		if err == nil {
			s.sessions.AddFlash(r.Context(), web.FlashSuccess, "Credit of "+username+" set to "+web.Money(cents)+".")
			web.Redirect(w, r, "/customers/"+url.PathEscape(username))
			return
		}
	}
	fields, status := web.FieldErrors(err), web.StatusOf(err)
	if ok && fields == nil && status != http.StatusConflict {
		s.site.Error(w, r, web.NotFoundFor400(err))
		return
	}
	v, verr := s.customerView(r, username)
	if verr != nil {
		s.site.Error(w, r, web.NotFoundFor400(verr))
		return
	}
	switch {
	case !ok:
		v.Amount, v.AmountError, v.FormError = typed, "Enter an amount such as 250.00.", "Please correct the marked field."
	case status == http.StatusConflict:
		v.FormError = "The credit of " + username + " changed meanwhile (an order, or another manager): it is now " +
			v.Credit + ". You wanted " + web.Money(cents) + "; submit again to set it."
		s.site.Render(w, r, http.StatusConflict, username, customerPage(v))
		return
	default:
		v.Amount, v.AmountError = typed, fields["credit_cents"]
		v.FormError = web.FormMessage(err, map[string]string{"credit": v.AmountError}, "credit")
	}
	s.site.Render(w, r, http.StatusUnprocessableEntity, username, customerPage(v))
}
