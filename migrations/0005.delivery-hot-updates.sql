-- Room on each page for the dispatcher's lease updates to stay heap-only (HOT):
-- a claim changes only lease_until, which no index covers.
-- depends: 0003.delivery-schedule-rounds
ALTER TABLE deliveries SET (fillfactor = 80);
