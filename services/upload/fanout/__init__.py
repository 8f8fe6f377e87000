"""Fan-out: an accepted event's deliveries, one per subscribed webhook whose filter it passes."""
