-- Drover schema 8: the audit log read in scope (docs/ACCESS.md, "Audit
-- log").  Each entry records the host group of the object it is about (the
-- group a create lands in), so an audit reader bound to a host group reads
-- the entries of its groups, filtered in the query like any list.  Entries
-- written before have none: they stay installation-wide, read only with a
-- global audit.read.

ALTER TABLE audit_log ADD COLUMN host_group_id TEXT;
CREATE INDEX audit_log_group_idx ON audit_log(host_group_id, at, id);
