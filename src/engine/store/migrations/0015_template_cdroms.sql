-- Drover schema 15: a template may carry installation media, CD-ROM drives
-- given to every VM made from it (issue 12, item 2; docs/API.md
-- "Installation media").  JSON: [{"library_share": ID, "file"} |
-- {"pool", "volume"} | {}], resolved on the VM's host when a VM is made.
-- Templates of schema 1-14 carry none.

ALTER TABLE templates ADD COLUMN cdroms TEXT;
