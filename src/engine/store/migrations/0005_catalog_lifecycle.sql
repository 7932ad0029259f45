-- Drover schema 5: the lifecycle of machine catalogs (docs/CATALOGS.md):
-- image updates and rollback, and the periodic reconcile report.

-- An image is made current only once its bases are made: pending until
-- then, failed with the reason when they could not be.  NULL (images of
-- schema 4) reads as ready.
ALTER TABLE catalog_images ADD COLUMN state TEXT;
ALTER TABLE catalog_images ADD COLUMN error TEXT;
-- The image that was current when this one was made current: what a
-- rollback returns to.  Its bases are kept while this image is current.
ALTER TABLE catalog_images ADD COLUMN previous_image_id TEXT;

-- The last periodic reconcile report of the catalog, JSON
-- {at, ok, orphans, missing, unreachable, error}; it never deletes.
ALTER TABLE catalogs ADD COLUMN last_reconcile TEXT;
