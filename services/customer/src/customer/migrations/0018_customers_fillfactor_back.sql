-- 0017 left room on each page of `customers` (fillfactor 70) so that updates could be HOT
-- (PostgreSQL ~105 -> ~89 us per update in bench/commands.py). Measured since, on a quiet machine,
-- in bench/gateway.py's board phase over 100k customers after its write phase: the 43 % larger heap
-- no longer stayed in shared buffers, and the board's pages cost PostgreSQL 1,300-1,400 us each
-- instead of ~200 (p99 250-770 ms instead of ~39 ms; docs/performance.md, "Issue 21: every target").
-- The board is read far more than customers are updated: pages written from now on are full again.
ALTER TABLE customers RESET (fillfactor);
