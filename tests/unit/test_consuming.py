"""services/common/consuming.py: acknowledgements sent together, never past an unsettled one."""

from __future__ import annotations

import asyncio

from services.common.consuming import Acks


class Channel:
    def __init__(self) -> None:
        self.sent: list[tuple[int, bool]] = []

    async def basic_ack(self, tag: int, multiple: bool = False) -> None:
        self.sent.append((tag, multiple))


async def settle() -> None:
    for _ in range(3):
        await asyncio.sleep(0)


async def test_a_run_from_the_oldest_is_one_frame_and_others_go_alone() -> None:
    channel = Channel()
    acks = Acks(channel)
    for tag in range(1, 7):
        acks.received(tag)
    for tag in (1, 2, 3, 5):
        acks.ack(tag)
    await settle()
    # 1-3 in one frame; 5 alone, since 4 (a slow delivery) is still open.
    assert channel.sent == [(3, True), (5, False)]
    acks.ack(4)
    acks.forget(6)  # nacked: settled at the broker
    await settle()
    assert channel.sent[2:] == [(4, True)]
    assert acks.unsettled == {}


async def test_a_message_never_settled_holds_every_later_run_back() -> None:
    channel = Channel()
    acks = Acks(channel)
    for tag in (1, 2, 3):
        acks.received(tag)
    acks.ack(2)
    acks.ack(3)
    await settle()
    # Tag 1 (cancelled at shutdown) must be redelivered: no multiple ack may cover it.
    assert channel.sent == [(2, False), (3, False)]
    assert acks.unsettled == {1: False}
