-- More room on each page of deliveries, so that the dispatcher's claim (a new version of
-- the row with lease_until set, which no index covers) stays on the page, heap-only,
-- and adds nothing to the table's five indexes. At 80 (0005) about a fifth of the claims
-- found no room left by the rows inserted beside them and updated every index; at 60
-- almost none. The table grows little: the dead versions of delivered rows are pruned
-- and their room reused. Only pages filled from now on are affected.
-- depends: 0009.webhook-max-concurrency
ALTER TABLE deliveries SET (fillfactor = 60);
