ALTER TABLE deliveries SET (fillfactor = 80);
