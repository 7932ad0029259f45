-- Drover schema 17: live migration (issue 14; docs/API.md "Live migration").
-- migration_uri: how the other hosts' libvirtd reach this host's for a
-- peer-to-peer migration, when that is not the URI Drover uses (NULL: the
-- host's uri).  migration_bandwidth_mib_s: the cap of every migration to
-- or from this host (NULL: none).  Hosts of schema 1-16 have neither.

ALTER TABLE hosts ADD COLUMN migration_uri TEXT;
ALTER TABLE hosts ADD COLUMN migration_bandwidth_mib_s INTEGER;
