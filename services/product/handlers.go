package product

import (
	"cmp"
	"log/slog"
	"net/http"
	"slices"

	"github.com/msdemo/msdemo/internal/httpjson"
	"github.com/msdemo/msdemo/internal/service"
)

// categoryID and productID read the {id} of the path; an id of the wrong shape is
// unknown (404) without asking the read model.
func categoryID(r *http.Request) (CategoryID, error) {
	if id := r.PathValue("id"); validID(id) {
		return CategoryID(id), nil
	}
	return "", service.ErrNotFound
}

func productID(r *http.Request) (ProductID, error) {
	if id := r.PathValue("id"); validID(id) {
		return ProductID(id), nil
	}
	return "", service.ErrNotFound
}

// categoryPage is the body of GET /categories.
type categoryPage struct {
	Categories []Category `json:"categories"`
	NextAfter  string     `json:"next_after"` // "" on the last page
}

// handleCategoryList serves GET /categories[?limit=&after=]: every category (up to 500
// when no limit is given) ordered by name.
func handleCategoryList(store *Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, after, err := service.PageParams(r)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		if !r.URL.Query().Has("limit") {
			limit = service.MaxPageLimit
		}
		cs, more, err := store.Categories(r.Context(), limit, CategoryID(after))
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		page := categoryPage{Categories: cs}
		if more {
			page.NextAfter = string(cs[len(cs)-1].ID)
		}
		httpjson.Write(w, http.StatusOK, page)
	})
}

// handleCategoryShow serves GET /categories/{id}.
func handleCategoryShow(store *Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := categoryID(r)
		if err == nil {
			var c Category
			if c, err = store.Category(r.Context(), id); err == nil {
				httpjson.Write(w, http.StatusOK, c)
				return
			}
		}
		service.Error(w, r, logger, err)
	})
}

// handleCategoryCreate serves POST /categories {name}: 201 with the category.
func handleCategoryCreate(c *catalog, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in CategoryInput
		if err := service.Decode(r, &in); err != nil {
			service.Error(w, r, logger, err)
			return
		}
		cat, err := c.AddCategory(r.Context(), in)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		httpjson.Write(w, http.StatusCreated, cat)
	})
}

// handleCategoryUpdate serves PUT /categories/{id} {name, expected_version?}.
func handleCategoryUpdate(c *catalog, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := categoryID(r)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		var in CategoryUpdate
		if err := service.Decode(r, &in); err != nil {
			service.Error(w, r, logger, err)
			return
		}
		cat, err := c.RenameCategory(r.Context(), id, in)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		httpjson.Write(w, http.StatusOK, cat)
	})
}

// handleCategoryDelete serves DELETE /categories/{id}: 204, or 409 while it has products.
func handleCategoryDelete(c *catalog, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := categoryID(r)
		if err == nil {
			err = c.DeleteCategory(r.Context(), id)
		}
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}

// productPage is the body of GET /products.
type productPage struct {
	Products  []Product `json:"products"`
	NextAfter string    `json:"next_after"` // "" on the last page
}

// handleProductList serves GET /products[?category_id=&sort=&limit=&after=], ordered by
// sort (name, the default, price or newest: Store.Products); after is the id of the last
// product of the previous page (its next_after).
func handleProductList(store *Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		limit, after, err := service.PageParams(r)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		category := r.URL.Query().Get("category_id")
		if len(category) > 200 {
			service.Error(w, r, logger, service.FieldErrors{"category_id": "is too long"})
			return
		}
		order := ProductOrder(cmp.Or(r.URL.Query().Get("sort"), string(ByName)))
		if !slices.Contains([]ProductOrder{ByName, ByPrice, Newest}, order) {
			service.Error(w, r, logger, service.FieldErrors{"sort": "must be name, price or newest"})
			return
		}
		ps, more, err := store.Products(r.Context(), CategoryID(category), order, limit, ProductID(after))
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		page := productPage{Products: ps}
		if more {
			page.NextAfter = string(ps[len(ps)-1].ID)
		}
		httpjson.Write(w, http.StatusOK, page)
	})
}

// handleProductShow serves GET /products/{id}.
func handleProductShow(store *Store, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := productID(r)
		if err == nil {
			var p Product
			if p, err = store.Product(r.Context(), id); err == nil {
				httpjson.Write(w, http.StatusOK, p)
				return
			}
		}
		service.Error(w, r, logger, err)
	})
}

// handleProductCreate serves POST /products: 201 with the product.
func handleProductCreate(c *catalog, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var in ProductInput
		if err := service.Decode(r, &in); err != nil {
			service.Error(w, r, logger, err)
			return
		}
		p, err := c.AddProduct(r.Context(), in)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		httpjson.Write(w, http.StatusCreated, p)
	})
}

// handleProductUpdate serves PUT /products/{id} with every field and expected_version:
// 200 with the product, or 409 {error, current_version} when the version has moved on.
func handleProductUpdate(c *catalog, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := productID(r)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		var in ProductUpdate
		if err := service.Decode(r, &in); err != nil {
			service.Error(w, r, logger, err)
			return
		}
		p, err := c.UpdateProduct(r.Context(), id, in)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		httpjson.Write(w, http.StatusOK, p)
	})
}

// handleProductDelete serves DELETE /products/{id}: 204.
func handleProductDelete(c *catalog, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := productID(r)
		if err == nil {
			err = c.DeleteProduct(r.Context(), id)
		}
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	})
}
