-- Drover schema 11: audit entries about catalogs, library shares and Run As
-- accounts are read in those objects' scopes (docs/ACCESS.md, "Audit
-- log").  Besides its host group (0008), an entry records the catalog,
-- library share or Run As account it is about, so an audit reader bound to
-- that object reads it.  Entries written before have none: they keep the
-- scope 0008 gave them (a group, or installation-wide).

ALTER TABLE audit_log ADD COLUMN scope_kind TEXT;
ALTER TABLE audit_log ADD COLUMN scope_id TEXT;
CREATE INDEX audit_log_scope_idx ON audit_log(scope_kind, scope_id, at, id);
