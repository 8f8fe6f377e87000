"""Ordered delivery per key (SPEC section 16): the only writer of `ordering_keys`, and the
rule that says whether a keyed delivery is at the head of its line.

An event's `ordering_seq` is its place among its user's events with the same key, in
acceptance order (NEXT_SEQ, in the statement that accepts it). Its deliveries copy both.
A delivery with a key is attempted only at the head of its line (AT_HEAD): no earlier
delivery of that webhook and key is pending, and no earlier event of that user and key is
still being fanned out. Why this is enough: docs/deliveries.md.

A delivery that cannot be claimed because an earlier one of its webhook and key is
pending records that one in waiting_for (deliveries.wait_behind), and its message is
acked: it waits without a message. Whoever ends a keyed delivery then publishes the
deliveries waiting for it (waiting.waiting_behind). Each side writes first and reads after its
write is committed, so at least one of them sees the other. waiting_for stays set until
the delivery is claimed, so one whose message was lost (a crash between an end and its
publish) is still seen waiting behind a delivery that has ended: the sweep publishes it
(waiting.stranded). A second message for one delivery is harmless: only one claim takes it.
"""

from __future__ import annotations

# 1 to 200 characters, as SPEC section 16 says.
MAX_ORDERING_KEY_LENGTH = 200
ORDERING_KEY_HEADER = "Ordering-Key"

# SQL (in an INSERT … SELECT over rows with user_id and ordering_key): the row's number in
# its key's order, or NULL without a key. The function (migration 0016) upserts the key's
# row in `ordering_keys` and keeps its lock until the inserting transaction commits, so
# numbers of one key become visible in the order they were given.
NEXT_SEQ = (
    "CASE WHEN ordering_key IS NULL THEN NULL::bigint "
    "ELSE ordering_next_seq(user_id, ordering_key) END"
)


def earlier_pending(delivery: str) -> str:
    """SQL: the pending deliveries of the same webhook and key before `delivery` (an alias
    of deliveries), as a FROM item aliased `p`."""
    return f"""
        deliveries p
        WHERE p.webhook_id = {delivery}.webhook_id AND p.ordering_key = {delivery}.ordering_key
          AND p.ordering_seq < {delivery}.ordering_seq AND p.status = 'pending'
    """


def earlier_unfanned(delivery: str, user_id: str) -> str:
    """SQL (a boolean): an earlier event of the same user and key whose deliveries are not
    all made yet; it may still make one ahead of `delivery`."""
    return f"""
        EXISTS (SELECT 1 FROM events e
                WHERE e.user_id = {user_id} AND e.ordering_key = {delivery}.ordering_key
                  AND e.ordering_seq < {delivery}.ordering_seq AND e.fanned_out_at IS NULL)
    """


def at_head(delivery: str, user_id: str) -> str:
    """SQL (a boolean): `delivery` (an alias of deliveries, of the webhook of user
    `user_id`) may be attempted now: it has no key, or nothing of its key is ahead."""
    return f"""
        ({delivery}.ordering_key IS NULL
         OR (NOT EXISTS (SELECT 1 FROM {earlier_pending(delivery)})
             AND NOT {earlier_unfanned(delivery, user_id)}))
    """
