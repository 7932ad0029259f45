-- Drover schema 9: each VM carries its host's host group (docs/ACCESS.md,
-- "Lists").  A scoped VM list filters on vms.host_group_id and reads
-- vms_host_group_idx in the page's order (name, id) instead of sorting every
-- visible row for each page.  Kept by triggers, so no write path can leave
-- it stale: a VM made or imported on a host, a VM moved to another host, a
-- host moved to another group.  (Planned as 0009 of issue 11; the integrator
-- renumbers at merge.)

ALTER TABLE vms ADD COLUMN host_group_id TEXT;
UPDATE vms SET host_group_id = (SELECT hosts.host_group_id FROM hosts WHERE hosts.id = vms.host_id);
CREATE INDEX vms_host_group_idx ON vms(host_group_id, name, id);

-- @sqlite
CREATE TRIGGER vms_host_group_insert AFTER INSERT ON vms FOR EACH ROW
BEGIN
    UPDATE vms SET host_group_id = (SELECT host_group_id FROM hosts WHERE id = NEW.host_id)
    WHERE id = NEW.id;
END;
CREATE TRIGGER vms_host_group_move AFTER UPDATE OF host_id, host_group_id ON vms FOR EACH ROW
WHEN NEW.host_group_id IS NOT (SELECT host_group_id FROM hosts WHERE id = NEW.host_id)
BEGIN
    UPDATE vms SET host_group_id = (SELECT host_group_id FROM hosts WHERE id = NEW.host_id)
    WHERE id = NEW.id;
END;
CREATE TRIGGER hosts_host_group_vms AFTER UPDATE OF host_group_id ON hosts FOR EACH ROW
WHEN NEW.host_group_id IS NOT OLD.host_group_id
BEGIN
    UPDATE vms SET host_group_id = NEW.host_group_id WHERE host_id = NEW.id;
END;
-- @end

-- @postgresql
CREATE OR REPLACE FUNCTION drover_vms_host_group() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    NEW.host_group_id := (SELECT host_group_id FROM hosts WHERE id = NEW.host_id);
    RETURN NEW;
END
$$;
CREATE TRIGGER vms_host_group BEFORE INSERT OR UPDATE OF host_id, host_group_id ON vms
    FOR EACH ROW EXECUTE FUNCTION drover_vms_host_group();
CREATE OR REPLACE FUNCTION drover_hosts_host_group_vms() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    UPDATE vms SET host_group_id = NEW.host_group_id WHERE host_id = NEW.id;
    RETURN NULL;
END
$$;
CREATE TRIGGER hosts_host_group_vms AFTER UPDATE OF host_group_id ON hosts FOR EACH ROW
    WHEN (NEW.host_group_id IS DISTINCT FROM OLD.host_group_id)
    EXECUTE FUNCTION drover_hosts_host_group_vms();
-- @end
