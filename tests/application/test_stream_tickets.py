"""IssueStreamTicket and RedeemStreamTicket: a ticket stands for its principal, once, briefly."""

from __future__ import annotations

import time

import pytest

from src.adapters.memory.revocations import MemoryRevocationList
from src.adapters.memory.tickets import MemoryTicketStore
from src.application.errors import InsufficientScope, InvalidTicket
from src.application.issue_stream_ticket import IssueStreamTicket, IssueStreamTicketCommand
from src.application.redeem_stream_ticket import RedeemStreamTicket, RedeemStreamTicketCommand
from src.application.security import Principal
from tests.application.fakes import AUDIENCE, FakeClock, SequentialIds, principal

pytestmark = pytest.mark.anyio

OTHER_RESOURCE = "https://calc.example/other"


class Desk:
    """Both use cases over one store, one clock and one revocation list."""

    def __init__(self, lifetime: float = 30.0) -> None:
        # the revocation list reads the real clock: keep the fake one near it
        self.clock = FakeClock(time.time())
        self.tickets = MemoryTicketStore(clock=self.clock.now)
        self.revocations = MemoryRevocationList()
        self.issuer = IssueStreamTicket(
            tickets=self.tickets, ids=SequentialIds("ticket"), clock=self.clock, lifetime=lifetime
        )
        self.redeemer = RedeemStreamTicket(
            tickets=self.tickets, revocations=self.revocations, clock=self.clock
        )

    def who(self, client_id: str = "alice", *, lasts: float = 3600.0) -> Principal:
        return principal(client_id, expires_at=self.clock.now() + lasts)

    async def issue(self, who: Principal, resource: str = AUDIENCE) -> str:
        issued = await self.issuer.execute(who, IssueStreamTicketCommand(resource=resource))
        return issued.ticket

    async def redeem(self, ticket: str, resource: str = AUDIENCE) -> Principal:
        return await self.redeemer.execute(
            RedeemStreamTicketCommand(ticket=ticket, resource=resource)
        )


@pytest.fixture
def desk() -> Desk:
    return Desk()


async def test_a_ticket_redeems_to_the_principal_it_was_issued_to(desk: Desk) -> None:
    alice = desk.who()

    issued = await desk.issuer.execute(alice, IssueStreamTicketCommand(resource=AUDIENCE))

    assert issued.expires_in == 30
    assert await desk.redeem(issued.ticket) == alice


async def test_a_ticket_is_redeemed_once_only(desk: Desk) -> None:
    ticket = await desk.issue(desk.who())
    await desk.redeem(ticket)

    with pytest.raises(InvalidTicket) as refused:
        await desk.redeem(ticket)

    assert "already been used" in str(refused.value)


async def test_each_ticket_is_its_own(desk: Desk) -> None:
    alice, bob = desk.who("alice"), desk.who("bob")
    tickets = [await desk.issue(alice), await desk.issue(bob)]

    assert tickets[0] != tickets[1]
    assert await desk.redeem(tickets[1]) == bob
    assert await desk.redeem(tickets[0]) == alice


async def test_an_expired_ticket_is_refused(desk: Desk) -> None:
    ticket = await desk.issue(desk.who())
    desk.clock.advance(30)

    with pytest.raises(InvalidTicket) as refused:
        await desk.redeem(ticket)

    assert "expired" in str(refused.value)


async def test_a_ticket_lasts_no_longer_than_its_token(desk: Desk) -> None:
    short = desk.who(lasts=10)

    issued = await desk.issuer.execute(short, IssueStreamTicketCommand(resource=AUDIENCE))
    desk.clock.advance(10)

    assert issued.expires_in == 10
    with pytest.raises(InvalidTicket):
        await desk.redeem(issued.ticket)


async def test_a_ticket_is_refused_at_another_resource_and_is_spent_all_the_same(
    desk: Desk,
) -> None:
    ticket = await desk.issue(desk.who())

    with pytest.raises(InvalidTicket) as refused:
        await desk.redeem(ticket, OTHER_RESOURCE)
    with pytest.raises(InvalidTicket):
        await desk.redeem(ticket)

    assert "not meant for this resource" in str(refused.value)


async def test_a_ticket_of_a_revoked_token_is_refused(desk: Desk) -> None:
    alice = desk.who()
    ticket = await desk.issue(alice)
    await desk.revocations.revoke(alice.token_id, alice.expires_at)

    with pytest.raises(InvalidTicket) as refused:
        await desk.redeem(ticket)

    assert "revoked" in str(refused.value)


@pytest.mark.parametrize("garbage", ["", "ticket-999", "x" * 1000, "ticket-1\n"])
async def test_an_unknown_ticket_is_refused(desk: Desk, garbage: str) -> None:
    await desk.issue(desk.who())

    with pytest.raises(InvalidTicket):
        await desk.redeem(garbage)


async def test_issuing_needs_the_sse_scope_and_stores_nothing_without_it(desk: Desk) -> None:
    with pytest.raises(InsufficientScope):
        await desk.issue(principal(scopes={"calculator"}))

    assert len(desk.tickets) == 0


async def test_expired_tickets_are_swept_as_new_ones_are_issued(desk: Desk) -> None:
    for _ in range(5):
        await desk.issue(desk.who())
    desk.clock.advance(31)

    await desk.issue(desk.who())

    assert len(desk.tickets) == 1
