ALTER TABLE deliveries DROP COLUMN IF EXISTS schedule_offset;
