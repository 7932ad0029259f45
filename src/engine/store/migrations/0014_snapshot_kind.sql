-- Drover schema 14: a VM's snapshots are internal (inside its qcow2
-- disks, libvirt's own) or external (a qcow2 layer on each disk and the
-- memory in a file; docs/VIRT.md, "Snapshots"), and may hold the memory
-- of the running VM.  Rows of schema 1-13 were all internal; whether they
-- hold memory is read again at the next sync.

ALTER TABLE snapshots ADD COLUMN kind TEXT NOT NULL DEFAULT 'internal';
ALTER TABLE snapshots ADD COLUMN memory INTEGER NOT NULL DEFAULT 0;
