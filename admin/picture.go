package admin

import (
	"cmp"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"

	"github.com/go-chi/chi/v5"

	"github.com/msdemo/msdemo/internal/httplimit"
	"github.com/msdemo/msdemo/internal/web"
)

// largeBodies are the admin routes whose request bodies may be larger than the sites'
// 1 MiB: the picture upload, a file of up to httplimit.MaxUploadBytes in a form.
var largeBodies = map[string]int64{"POST /products/{id}/image": httplimit.MaxUploadBodyBytes}

// tooLargeMessage is the picture field's message for a file over the limit.
var tooLargeMessage = fmt.Sprintf("is larger than %d MiB: choose a smaller file", httplimit.MaxUploadBytes>>20)

// imageUpload is what the picture form posts.
type imageUpload struct {
	Version     string
	File        []byte
	ContentType string // the browser's guess; the API tells the format from the bytes
}

// errUploadTooLarge says the posted file, or the whole form, is over the limit.
var errUploadTooLarge = errors.New("upload too large")

// readImageUpload reads the multipart form of r: the field version and the file field
// image, which may hold httplimit.MaxUploadBytes (more: errUploadTooLarge). The file is
// read as it streams in, never kept on disk.
func readImageUpload(r *http.Request) (imageUpload, error) {
	var up imageUpload
	form, err := r.MultipartReader()
	if err != nil {
		return up, err
	}
	for {
		part, err := form.NextPart()
		var tooLarge *http.MaxBytesError
		switch {
		case errors.Is(err, io.EOF):
			return up, nil
		case errors.As(err, &tooLarge):
			return up, errUploadTooLarge
		case err != nil:
			return up, err
		}
		switch part.FormName() {
		case "version":
			b, err := io.ReadAll(io.LimitReader(part, 32))
			if err != nil {
				return up, readError(err)
			}
			up.Version = string(b)
		case "image":
			if up.File, err = io.ReadAll(io.LimitReader(part, httplimit.MaxUploadBytes+1)); err != nil {
				return up, readError(err)
			}
			if len(up.File) > httplimit.MaxUploadBytes {
				return up, errUploadTooLarge
			}
			up.ContentType = part.Header.Get("Content-Type")
		}
	}
}

// readError is errUploadTooLarge for a body over the limit, else err.
func readError(err error) error {
	var tooLarge *http.MaxBytesError
	if errors.As(err, &tooLarge) {
		return errUploadTooLarge
	}
	return err
}

// handleProductImage serves POST /products/{id}/image, the picture form: the file goes to
// the API as it is (PUT /product/products/{id}/image), with the version the page showed
// as expected_version, and the API decodes and checks it. Then 303 back to the edit page.
// A file that is missing, too large or refused (not a JPEG, PNG or WebP image, damaged),
// and a product changed meanwhile, show the edit page again with the message.
func (s *server) handleProductImage(w http.ResponseWriter, r *http.Request) {
	id := chi.URLParam(r, "id")
	up, err := readImageUpload(r)
	switch {
	case errors.Is(err, errUploadTooLarge):
		s.renderProductImageError(w, r, id, http.StatusRequestEntityTooLarge, tooLargeMessage, "")
		return
	case err != nil:
		s.renderProductImageError(w, r, id, http.StatusBadRequest, "could not be read: send the form again", "")
		return
	case len(up.File) == 0:
		s.renderProductImageError(w, r, id, http.StatusUnprocessableEntity, "Choose a picture to upload.", "")
		return
	}
	path := "/product/products/" + url.PathEscape(id) + "/image"
	if up.Version != "" {
		path += "?" + url.Values{"expected_version": {up.Version}}.Encode()
	}
	var p web.Product
	err = s.api.Upload(r.Context(), s.token(r), path, cmp.Or(up.ContentType, "application/octet-stream"), up.File, &p)
	switch fields, status := web.FieldErrors(err), web.StatusOf(err); {
	case err == nil:
		s.sessions.AddFlash(r.Context(), web.FlashSuccess, "Picture of “"+p.Name+"” saved.")
		web.Redirect(w, r, "/products/"+url.PathEscape(id))
	case fields != nil && fields["image"] != "":
		s.renderProductImageError(w, r, id, http.StatusUnprocessableEntity, fields["image"], "")
	case status == http.StatusRequestEntityTooLarge:
		s.renderProductImageError(w, r, id, status, tooLargeMessage, "")
	case status == http.StatusConflict:
		s.renderProductImageError(w, r, id, status, "",
			"This product was changed while you were looking at it: the page now shows it as it is. Upload the picture again if you still want it.")
	default:
		s.site.Error(w, r, web.NotFoundFor400(err))
	}
}

// renderProductImageError shows the edit page of product id, as it is now, with
// fieldError under the picture field and formError above the picture form.
func (s *server) renderProductImageError(w http.ResponseWriter, r *http.Request, id string, status int, fieldError, formError string) {
	p, err := s.api.Product(r.Context(), s.token(r), id)
	if err != nil {
		s.site.Error(w, r, web.NotFoundFor400(err))
		return
	}
	f := formOfProduct(p)
	f.ImageError, f.FormError = fieldError, formError
	if fieldError != "" {
		f.FormError = "The picture was not saved: please correct the marked field."
	}
	s.renderProductForm(w, r, status, f)
}
