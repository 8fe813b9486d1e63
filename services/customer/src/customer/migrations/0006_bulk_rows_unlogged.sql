-- Staged bulk rows are working data: written once, read once at commit, kept for the results
-- pages. Unlogged, they cost no WAL (measured here: the staging write was a fifth of the
-- database's work per uploaded row). A database crash empties the table: an upload in
-- progress is then retried by its client (begin starts it over), and a committed upload's
-- per-row results are gone while its counts stay in bulk_uploads.
ALTER TABLE bulk_rows SET UNLOGGED;
