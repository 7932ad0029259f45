-- Drover schema 12: a guest OS profile may take its domain-join
-- credentials from a Run As account instead of holding them inline
-- (docs/ACCESS.md, "Run As accounts").  The profile keeps a reference,
-- never a copy of the secret; using it (a catalog's identity disks) needs
-- run_as.use on the account, and an account a profile names cannot be
-- deleted.  Profiles of schema 2-11 name none.

ALTER TABLE guest_os_profiles ADD COLUMN domain_join_run_as_id TEXT REFERENCES run_as_accounts(id);
CREATE INDEX guest_os_profiles_run_as_idx ON guest_os_profiles(domain_join_run_as_id);
