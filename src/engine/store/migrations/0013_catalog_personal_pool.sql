-- Drover schema 13: a catalog may keep its machines' personal disks in
-- another storage pool than their OS disks (seed 004, "Personal vDisk
-- creation"; docs/CATALOGS.md "Personal disks on other storage").  NULL:
-- the catalog's own pool, as every catalog of schema 4-12.

ALTER TABLE catalogs ADD COLUMN personal_disk_pool TEXT;
