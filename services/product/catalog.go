package product

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/msdemo/msdemo/internal/event"
	"github.com/msdemo/msdemo/internal/service"
)

// catalog carries out the commands: it reads the aggregate from the read model, decides
// with the domain rules, and appends the events (service.Runtime.Write, which waits until
// the read model has applied them). A command that fails appends nothing.
//
// Rules within one stream are guarded by expected versions. Rules across streams (unique
// category names, no product in an unknown category, no deleting a category that has
// products) are checked under mu, so they hold for one instance of the service; two
// replicas writing categories at the same moment could break them (a reservation stream
// per name would close that gap).
type catalog struct {
	store  *Store
	images *Images
	write  func(ctx context.Context, stream string, expected *int64, events ...event.New) (event.AppendReply, error)
	// waitForStream waits until the read model has what the event store holds of a
	// stream (service.Runtime.WaitForStream).
	waitForStream func(ctx context.Context, stream string) (found bool, err error)
	mu            sync.Mutex
	// decoding holds a token per image being decoded (SetImage); its capacity is how many
	// may be at once.
	decoding chan struct{}
}

// imageDecoders is how many images one instance decodes at once.
const imageDecoders = 1

func version(n int64) *int64 { return &n }

// AddCategory adds a category named in.Name.
func (c *catalog) AddCategory(ctx context.Context, in CategoryInput) (Category, error) {
	name, errs := in.ValidCategoryName()
	if errs != nil {
		return Category{}, errs
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	all, err := c.store.AllCategories(ctx)
	if err != nil {
		return Category{}, err
	}
	if err := CheckCategoryName(all, name, ""); err != nil {
		return Category{}, err
	}
	id := CategoryID(newID())
	reply, err := c.write(ctx, categoryStream(id), version(0),
		service.NewEvent(event.CategoryAdded, CategoryAddedData{ID: id, Name: name}))
	if err != nil {
		return Category{}, fmt.Errorf("add category: %w", err)
	}
	return Category{ID: id, Name: name, Version: reply.LastVersion}, nil
}

// RenameCategory renames category id; in.ExpectedVersion, if set, must be its version.
func (c *catalog) RenameCategory(ctx context.Context, id CategoryID, in CategoryUpdate) (Category, error) {
	name, errs := in.ValidCategoryName()
	if in.ExpectedVersion != nil && *in.ExpectedVersion < 1 {
		if errs == nil {
			errs = service.FieldErrors{}
		}
		errs["expected_version"] = "must be a whole number from 1"
	}
	if errs != nil {
		return Category{}, errs
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	cat, err := c.store.Category(ctx, id)
	if err != nil {
		return Category{}, err
	}
	expected := cat.Version
	if in.ExpectedVersion != nil {
		if err := CheckExpectedVersion(categoryStream(id), *in.ExpectedVersion, cat.Version); err != nil {
			return Category{}, err
		}
	}
	all, err := c.store.AllCategories(ctx)
	if err != nil {
		return Category{}, err
	}
	if err := CheckCategoryName(all, name, id); err != nil {
		return Category{}, err
	}
	reply, err := c.write(ctx, categoryStream(id), version(expected),
		service.NewEvent(event.CategoryRenamed, CategoryRenamedData{Name: name}))
	if err != nil {
		return Category{}, fmt.Errorf("rename category %s: %w", id, err)
	}
	return Category{ID: id, Name: name, Version: reply.LastVersion}, nil
}

// DeleteCategory deletes category id unless it still has products.
func (c *catalog) DeleteCategory(ctx context.Context, id CategoryID) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cat, err := c.store.Category(ctx, id)
	if err != nil {
		return err
	}
	n, err := c.store.ProductsInCategory(ctx, id)
	if err != nil {
		return err
	}
	if err := CheckCategoryDeletable(n); err != nil {
		return err
	}
	if _, err := c.write(ctx, categoryStream(id), version(cat.Version), service.NewEvent(event.CategoryDeleted, struct{}{})); err != nil {
		return fmt.Errorf("delete category %s: %w", id, err)
	}
	return nil
}

// checkCategory returns a field error when category does not exist. The caller holds mu.
func (c *catalog) checkCategory(ctx context.Context, category CategoryID) error {
	_, err := c.store.Category(ctx, category)
	if errors.Is(err, service.ErrNotFound) {
		return service.FieldErrors{"category_id": "unknown category"}
	}
	return err
}

// AddProduct adds a product.
func (c *catalog) AddProduct(ctx context.Context, in ProductInput) (Product, error) {
	f, errs := in.ValidFields()
	if errs != nil {
		return Product{}, errs
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.checkCategory(ctx, f.CategoryID); err != nil {
		return Product{}, err
	}
	id := ProductID(newID())
	reply, err := c.write(ctx, productStream(id), version(0),
		service.NewEvent(event.ProductAdded, ProductAddedData{ID: id, ProductFields: f}))
	if err != nil {
		return Product{}, fmt.Errorf("add product: %w", err)
	}
	return Product{ID: id, ProductFields: f, Version: reply.LastVersion}, nil
}

// UpdateProduct replaces the editable fields of product id, whose version must be
// in.ExpectedVersion (else *service.ConflictError, and nothing changes).
func (c *catalog) UpdateProduct(ctx context.Context, id ProductID, in ProductUpdate) (Product, error) {
	f, errs := in.ValidFields()
	expected, verrs := in.ValidExpectedVersion()
	if errs != nil || verrs != nil {
		if errs == nil {
			errs = service.FieldErrors{}
		}
		for k, v := range verrs {
			errs[k] = v
		}
		return Product{}, errs
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	p, err := c.store.Product(ctx, id)
	if err != nil {
		return Product{}, err
	}
	if err := c.checkCategory(ctx, f.CategoryID); err != nil {
		return Product{}, err
	}
	if err := CheckExpectedVersion(productStream(id), expected, p.Version); err != nil {
		return Product{}, err
	}
	reply, err := c.write(ctx, productStream(id), version(expected), service.NewEvent(event.ProductUpdated, f))
	if err != nil {
		return Product{}, fmt.Errorf("update product %s: %w", id, err)
	}
	return Product{ID: id, ProductFields: f, Version: reply.LastVersion, Image: p.Image, Thumbnail: p.Thumbnail}, nil
}

// maxImageTries bounds how often SetImage appends again when the product's stream moved
// on under an upload without an expected version.
const maxImageTries = 3

// SetImage makes the pictures of product id from the uploaded file raw (MakePictures),
// stores them (Images.Put), and appends product.image-set with their ids. expected, if
// not nil, must be the product's version (else *service.ConflictError). The checks that
// cost nothing come first: an unknown product is service.ErrNotFound and a stale version
// a conflict before a byte is decoded. A refused file is a service.FieldErrors for
// "image". Pictures stored for an append that then fails stay stored, unreferenced.
func (c *catalog) SetImage(ctx context.Context, id ProductID, expected *int64, raw []byte) (Product, error) {
	p, err := c.store.Product(ctx, id)
	if err != nil {
		return Product{}, err
	}
	if expected != nil {
		if err := CheckExpectedVersion(productStream(id), *expected, p.Version); err != nil {
			return Product{}, err
		}
	}
	large, thumb, err := c.makePictures(ctx, raw)
	if err != nil {
		return Product{}, err
	}
	if err := c.images.Put(ctx, large, thumb); err != nil {
		return Product{}, fmt.Errorf("set the image of product %s: %w", id, err)
	}
	d := ImageSetData{ImageID: large.ID, ThumbID: thumb.ID, Width: large.Width, Height: large.Height,
		ThumbWidth: thumb.Width, ThumbHeight: thumb.Height}
	// Without an expected version the upload goes on top of whatever the stream got while
	// the file was decoded (the saga reserves stock on it): the version is read again
	// now, and after a conflict once the read model has caught up with the stream (another
	// replica's reservation reaches this one's read model later), so that only a deleted
	// product refuses it.
	for try := 1; ; try++ {
		if expected == nil {
			if p, err = c.store.Product(ctx, id); err != nil {
				return Product{}, err
			}
		}
		at := p.Version
		if expected != nil {
			at = *expected
		}
		reply, err := c.write(ctx, productStream(id), &at, service.NewEvent(event.ProductImageSet, d))
		var conflict *service.ConflictError
		if errors.As(err, &conflict) && expected == nil && try < maxImageTries {
			if _, err := c.waitForStream(ctx, productStream(id)); err != nil {
				return Product{}, err
			}
			continue
		}
		if err != nil {
			return Product{}, fmt.Errorf("set the image of product %s: %w", id, err)
		}
		p.Version = reply.LastVersion
		break
	}
	p.Image, p.Thumbnail = refOf(large.ID, large.Width, large.Height), refOf(thumb.ID, thumb.Width, thumb.Height)
	return p, nil
}

// makePictures runs MakePictures once a decoding slot is free (or ctx is done): making
// the pictures of a large image takes up to ~240 MB, so the slots bound the memory a
// burst of uploads takes.
func (c *catalog) makePictures(ctx context.Context, raw []byte) (large, thumb Picture, err error) {
	select {
	case c.decoding <- struct{}{}:
		defer func() { <-c.decoding }()
	case <-ctx.Done():
		return Picture{}, Picture{}, fmt.Errorf("wait to decode an image: %w", ctx.Err())
	}
	return MakePictures(raw)
}

// DeleteProduct deletes product id.
func (c *catalog) DeleteProduct(ctx context.Context, id ProductID) error {
	p, err := c.store.Product(ctx, id)
	if err != nil {
		return err
	}
	if _, err := c.write(ctx, productStream(id), version(p.Version), service.NewEvent(event.ProductDeleted, struct{}{})); err != nil {
		return fmt.Errorf("delete product %s: %w", id, err)
	}
	return nil
}
