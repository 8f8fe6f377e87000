-- delivery.failed fires when a delivery ends failed: after its last scheduled attempt, or
-- at once when its endpoint answers 410 Gone (which stops retries); say both.
-- depends: 0010.deliveries-claim-room
UPDATE event_types
SET description = 'A delivery ended failed: it used up its retry schedule, or its endpoint answered 410 Gone',
    updated_at = now()
WHERE id = 'e338f936-18a7-4637-bcef-499b12cd9225'
  AND description = 'A delivery used up its retry schedule without success';
