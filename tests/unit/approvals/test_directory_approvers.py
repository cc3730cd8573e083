"""`approvers = ["group:dba"]` with the groups of the config's [[user]] entries: the broker that
`serve` builds (server.build_broker) knows who is in which group."""

from __future__ import annotations

from wireproxy.auth.scram import make_verifier

import pytest

from wireproxy.approvals import ApprovalRequest, NotAllowed
from wireproxy.config import load_config
from wireproxy.server import build_broker

# The verifiers are never checked here: approvers are named through the admin API, not logged in.
VERIFIER = make_verifier("not used here", iterations=64)
CONFIG = f'''
[[user]]
name = "dana"
groups = ["dba", "oncall"]
scram = "{VERIFIER}"

[[user]]
name = "erin"
groups = ["dev"]
scram = "{VERIFIER}"
'''


def request(user: str = "alice") -> ApprovalRequest:
    return ApprovalRequest(user, "app", "DROP TABLE t", "hold-ddl", ("group:dba",), None, "drop table t")


@pytest.fixture
async def broker(nursery, tmp_path):
    path = tmp_path / "wireproxy.toml"
    path.write_text(CONFIG)
    b = build_broker(load_config(path))
    await nursery.start(b.run)
    return b


async def test_a_group_approver_from_the_directory_may_approve(broker):
    ticket = await broker.submit(request())
    await broker.approve(ticket.id, "dana", "dana is in dba")
    outcome = await ticket.wait()
    assert outcome.approved and outcome.approver == "dana"


@pytest.mark.parametrize("approver", ["erin", "mallory"])    # another group; not in the directory
async def test_others_may_not(broker, approver):
    ticket = await broker.submit(request())
    with pytest.raises(NotAllowed, match=f"{approver} is not an approver for rule hold-ddl"):
        await broker.approve(ticket.id, approver)
    assert (await broker.get(ticket.id)).pending


async def test_a_group_member_still_may_not_approve_their_own_request(broker):
    ticket = await broker.submit(request(user="dana"))
    with pytest.raises(NotAllowed, match="dana asked for this approval"):
        await broker.approve(ticket.id, "dana")
