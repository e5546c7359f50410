"""Group rules (chat/rules/groups.py) on a tiny in-memory plan."""

from __future__ import annotations

import pytest
from chatworld import World
from liaotian.protocol import ErrorCode
from liaotian.server.chat.model import ROLE_ADMIN, ROLE_MEMBER, ROLE_OWNER
from liaotian.server.chat.ops import (
    AddMembers,
    BlockUser,
    CreateGroup,
    LeaveGroup,
    RemoveMember,
    SetRole,
    TransferGroup,
    UpdateGroup,
)
from liaotian.server.chat.policy import Policy


def make(w: World, owner: str = "alice", *members: str) -> int:
    op = w.apply(CreateGroup(actor=w.ids[owner], name="g", members=members))
    assert op.error is None and op.group is not None, op.error_message
    return int(op.group.conv)


def test_create_makes_the_owner_and_members_and_a_created_event() -> None:
    w = World()
    a, b, c = w.users("alice", "bob", "carol")
    op = w.apply(CreateGroup(actor=a, name="team", topic="t", members=("bob", "carol", "bob")))
    g = op.group
    assert g is not None and op.pos == 1
    assert {u: m.role for u, m in g.members.items()} == {
        a: ROLE_OWNER,
        b: ROLE_MEMBER,
        c: ROLE_MEMBER,
    }
    assert op.names == {a: "alice", b: "bob", c: "carol"}
    assert w.texts("bob") == ["created"]
    assert w.social[a].groups_owned == 1 and w.social[c].groups_joined == 1
    assert [p.user for p in op.pushes] == [a, b, c]  # one push per member's entry


def test_privacy_groups_and_blocks_keep_people_out() -> None:
    w = World()
    a, b = w.users("alice", "bob", open_groups=False)
    op = w.apply(CreateGroup(actor=a, name="g", members=("bob",)))
    assert op.error == ErrorCode.NOT_ALLOWED  # not contacts: the default refuses
    w.social[b].groups = 0
    w.apply(BlockUser(actor=b, user="alice"))
    assert w.apply(CreateGroup(actor=a, name="g", members=("bob",))).error == ErrorCode.NOT_ALLOWED


def test_an_added_member_joins_at_the_event_that_adds_them() -> None:
    w = World()
    a, _b, c = w.users("alice", "bob", "carol")
    g = make(w, "alice", "bob")
    w.send("bob", "", "before", group=g)
    op = w.apply(AddMembers(actor=a, group=g, users=("carol",)))
    assert op.error is None and op.pos == 3
    assert w.groups[g].members[c].joined_pos == 3
    assert w.texts("carol") == ["added"]  # nothing from before the join point
    w.send("bob", "", "after", group=g)
    assert w.texts("carol") == ["added", "after"]


def test_only_admins_add_and_only_the_owner_removes_admins() -> None:
    w = World()
    a, b, c = w.users("alice", "bob", "carol")
    w.users("dave")
    g = make(w, "alice", "bob", "carol")
    assert w.apply(AddMembers(actor=b, group=g, users=("dave",))).error == ErrorCode.FORBIDDEN
    assert w.apply(SetRole(actor=a, group=g, user="bob", role="admin")).error is None
    assert w.groups[g].members[b].role == ROLE_ADMIN
    assert w.apply(AddMembers(actor=b, group=g, users=("dave",))).error is None
    assert w.apply(SetRole(actor=a, group=g, user="carol", role="admin")).error is None
    assert w.apply(RemoveMember(actor=b, group=g, user="carol")).error == ErrorCode.FORBIDDEN
    assert w.apply(RemoveMember(actor=a, group=g, user="carol")).error is None
    assert c not in w.groups[g].members and w.social[c].groups_joined == 0
    assert w.apply(RemoveMember(actor=a, group=g, user="carol")).error == ErrorCode.CONFLICT


def test_the_owner_transfers_before_leaving() -> None:
    w = World()
    a, b = w.users("alice", "bob")
    g = make(w, "alice", "bob")
    assert w.apply(LeaveGroup(actor=a, group=g)).error == ErrorCode.CONFLICT
    assert w.apply(TransferGroup(actor=a, group=g, user="bob")).error is None
    assert w.groups[g].owner == b and w.groups[g].members[a].role == ROLE_ADMIN
    assert (w.social[a].groups_owned, w.social[b].groups_owned) == (0, 1)
    assert w.apply(LeaveGroup(actor=a, group=g)).error is None
    assert a not in w.groups[g].members and w.texts("alice")[-1] == "left"
    assert w.apply(LeaveGroup(actor=a, group=g)).error == ErrorCode.NOT_MEMBER


def test_update_needs_a_field_and_an_admin() -> None:
    w = World()
    a, b = w.users("alice", "bob")
    g = make(w, "alice", "bob")
    assert w.apply(UpdateGroup(actor=a, group=g)).error == ErrorCode.INVALID_FIELD
    assert w.apply(UpdateGroup(actor=b, group=g, name="x")).error == ErrorCode.FORBIDDEN
    op = w.apply(UpdateGroup(actor=a, group=g, name="new", topic="top"))
    assert op.error is None and op.pos == 3  # two events: renamed, topic
    assert (w.groups[g].name, w.groups[g].topic) == ("new", "top")


@pytest.mark.parametrize(
    "field, bound, code",
    [
        ("max_group_size", 2, ErrorCode.GROUP_FULL),
        ("max_groups_joined", 0, ErrorCode.LIMIT_REACHED),
    ],
)
def test_bounds_come_from_the_policy(field: str, bound: int, code: ErrorCode) -> None:
    w = World()
    a, _b, _c = w.users("alice", "bob", "carol")
    policy = Policy(**{field: bound})
    op = w.apply(CreateGroup(actor=a, name="g", members=("bob", "carol"), policy=policy))
    assert op.error == code


def test_rows_are_charged_to_the_budget_and_a_refusal_undoes_the_charge() -> None:
    class Budget:
        def __init__(self) -> None:
            self.taken: list[int] = []
            self.refunded: list[int] = []
            self.left = 100

        def take_rows(self, uid: int, rows: int) -> float | None:
            if rows > self.left:
                return 1.5
            self.left -= rows
            self.taken.append(rows)
            return None

        def refund_rows(self, uid: int, rows: int) -> None:
            self.refunded.append(rows)

    w = World()
    a, _b = w.users("alice", "bob")
    budget = Budget()
    op = w.apply(CreateGroup(actor=a, name="g", members=("bob",), policy=Policy(budget=budget)))
    assert op.error is None and budget.taken == [2] and op.rows_charged == 2
    budget.left = 0
    op = w.apply(CreateGroup(actor=a, name="g2", members=("bob",), policy=Policy(budget=budget)))
    assert op.error == ErrorCode.RATE_LIMITED and op.rows_charged == 0
