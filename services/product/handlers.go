package product

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"mime"
	"net/http"
	"slices"
	"strconv"
	"strings"

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

// errImageTooLarge says an uploaded file is larger than MaxImageBytes (413).
var errImageTooLarge = errors.New("image too large")

// readImageUpload returns the file r uploads: its body, whatever its Content-Type, or
// for a multipart/form-data body the file field "image". A file larger than
// MaxImageBytes, or a body larger than the server lets through, is errImageTooLarge.
func readImageUpload(r *http.Request) ([]byte, error) {
	var file io.Reader = r.Body
	if mediaType, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type")); mediaType == "multipart/form-data" {
		form, err := r.MultipartReader()
		if err != nil {
			return nil, service.FieldErrors{"body": "is not a multipart form: " + err.Error()}
		}
		for file = nil; file == nil; {
			part, err := form.NextPart()
			var tooLarge *http.MaxBytesError
			switch {
			case errors.Is(err, io.EOF):
				return nil, service.FieldErrors{"image": "required: a file field named image"}
			case errors.As(err, &tooLarge):
				return nil, errImageTooLarge
			case err != nil:
				return nil, service.FieldErrors{"body": "is not a readable multipart form: " + err.Error()}
			case part.FormName() == "image":
				file = part
			}
		}
	}
	raw, err := io.ReadAll(io.LimitReader(file, MaxImageBytes+1))
	var tooLarge *http.MaxBytesError
	switch {
	case errors.As(err, &tooLarge), err == nil && len(raw) > MaxImageBytes:
		return nil, errImageTooLarge
	case err != nil:
		return nil, service.FieldErrors{"image": "could not be read: " + err.Error()}
	}
	return raw, nil
}

// handleImageSet serves PUT /products/{id}/image[?expected_version=]: the image file as
// the body (any Content-Type: the format is told from the bytes), or as the file field
// "image" of a multipart/form-data body. 200 with the product and its new pictures; 400
// with fields.image for a file that is not a JPEG, PNG or WebP image of at most 40
// megapixels, or is damaged; 413 for a file larger than MaxImageBytes; 404 for an unknown
// product; 409 {error, current_version} when expected_version is given and the product
// has moved on. A refused upload changes nothing.
func handleImageSet(c *catalog, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id, err := productID(r)
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		var expected *int64
		if v := r.URL.Query().Get("expected_version"); v != "" {
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 1 {
				service.Error(w, r, logger, service.FieldErrors{"expected_version": "must be a whole number from 1"})
				return
			}
			expected = &n
		}
		raw, err := readImageUpload(r)
		if err == nil {
			var p Product
			if p, err = c.SetImage(r.Context(), id, expected, raw); err == nil {
				httpjson.Write(w, http.StatusOK, p)
				return
			}
		}
		if errors.Is(err, errImageTooLarge) {
			msg := fmt.Sprintf("is larger than %d MiB", MaxImageBytes>>20)
			httpjson.Write(w, http.StatusRequestEntityTooLarge, httpjson.ErrorBody{Error: "image " + msg,
				Fields: map[string]string{"image": msg}})
			return
		}
		service.Error(w, r, logger, err)
	})
}

// imageCacheControl lets browsers and proxies keep a picture for a year without asking
// again: what an id names never changes.
const imageCacheControl = "public, max-age=31536000, immutable"

// handleImageShow serves GET /images/{id}: the picture's bytes with their Content-Type,
// X-Content-Type-Options: nosniff, an ETag of the id and imageCacheControl; 304 when
// If-None-Match names it (without reading the database: an id's bytes never change); 404
// for an unknown id, 400 for one that is not 64 lowercase hex digits.
func handleImageShow(images *Images, logger *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.PathValue("id")
		if !validImageID(id) {
			service.Error(w, r, logger, service.FieldErrors{"id": "is not an image id (64 lowercase hexadecimal digits)"})
			return
		}
		h := w.Header()
		h.Set("X-Content-Type-Options", "nosniff")
		etag := `"` + id + `"`
		if etagListed(r.Header.Get("If-None-Match"), etag) {
			h.Set("ETag", etag)
			h.Set("Cache-Control", imageCacheControl)
			w.WriteHeader(http.StatusNotModified)
			return
		}
		p, err := images.Get(r.Context(), ImageID(id))
		if err != nil {
			service.Error(w, r, logger, err)
			return
		}
		h.Set("Content-Type", p.ContentType)
		h.Set("Content-Length", strconv.Itoa(len(p.Bytes)))
		h.Set("ETag", etag)
		h.Set("Cache-Control", imageCacheControl)
		w.WriteHeader(http.StatusOK)
		if r.Method != http.MethodHead {
			_, _ = w.Write(p.Bytes)
		}
	})
}

// etagListed reports whether the If-None-Match header value list names etag (weakly, as
// RFC 9110 compares for If-None-Match), or is "*".
func etagListed(list, etag string) bool {
	for tag := range strings.SplitSeq(list, ",") {
		tag = strings.TrimPrefix(strings.TrimSpace(tag), "W/")
		if tag == etag || tag == "*" {
			return true
		}
	}
	return false
}
