-- Drover schema 10: catalog machines have an owner and carry their quota
-- charge (docs/ACCESS.md, "Catalog machines").  A machine a user adds to a
-- catalog is that user's, as a VM it creates is (vms.owner_id); what its
-- binding's quota was charged for it is kept in the row, JSON {binding_id,
-- user_id, vms, vcpus, memory_mib, storage_gib}, so removing the row gives
-- back exactly that.  Machines of schema 4-7 have neither: nobody's, and
-- charged to no quota.

ALTER TABLE catalog_machines ADD COLUMN owner_id TEXT;
ALTER TABLE catalog_machines ADD COLUMN quota TEXT;
CREATE INDEX catalog_machines_owner_idx ON catalog_machines(catalog_id, owner_id);
