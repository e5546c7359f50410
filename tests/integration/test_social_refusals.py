"""Table-driven refusals of the social requests: every one of them needs an authenticated
session (2001 until a login succeeds), and malformed fields are 1003."""

from __future__ import annotations

import pytest
from liaotian.protocol import Error, ErrorCode, Login, Message, Send
from liaotian.protocol.social import (
    SOCIAL_CLIENT_TYPES,
    Block,
    ContactAccept,
    ContactCancel,
    ContactDecline,
    ContactRemove,
    ContactRequest,
    GetGroup,
    GetPresence,
    GetPrivacy,
    GetProfile,
    GetReceipts,
    GroupAdd,
    GroupCreate,
    GroupLeave,
    GroupList,
    GroupRemove,
    GroupSetRole,
    GroupTransfer,
    GroupUpdate,
    ListContacts,
    ListConversations,
    ListGroups,
    Privacy,
    Profile,
    Read,
    SetPrivacy,
    SetProfile,
    Typing,
    Unblock,
)
from socialclient import SocialClient, social_server

# One well-formed example of every social request (TYPING is one-way: checked apart).
REQUESTS: dict[type[Message], dict] = {
    GroupCreate: {"name": "g", "members": ("bob",)},
    GetGroup: {"group": 1},
    GroupAdd: {"group": 1, "users": ("bob",)},
    GroupRemove: {"group": 1, "user": "bob"},
    GroupLeave: {"group": 1},
    GroupUpdate: {"group": 1, "name": "renamed"},
    GroupSetRole: {"group": 1, "user": "bob", "role": "admin"},
    GroupTransfer: {"group": 1, "user": "bob"},
    ListGroups: {},
    Read: {"conv": 1, "pos": 1},
    GetReceipts: {"conv": 1},
    ListConversations: {"limit": 5},
    GetPresence: {"users": ("bob",)},
    ContactRequest: {"user": "bob"},
    ContactAccept: {"user": "bob"},
    ContactDecline: {"user": "bob"},
    ContactCancel: {"user": "bob"},
    ContactRemove: {"user": "bob"},
    ListContacts: {},
    Block: {"user": "bob"},
    Unblock: {"user": "bob"},
    SetProfile: {"display_name": "Mallory", "status": "sneaky"},
    GetProfile: {"user": "bob"},
    SetPrivacy: {"presence": "nobody", "profile": "nobody", "messages": "contacts"},
    GetPrivacy: {},
}


def test_the_table_covers_every_social_request() -> None:
    covered = {int(cls.TYPE) for cls in REQUESTS} | {int(Typing.TYPE)}
    assert covered == set(SOCIAL_CLIENT_TYPES)


async def refuse_all(c: SocialClient) -> None:
    for cls, fields in REQUESTS.items():
        err = await c.fail(cls, ErrorCode.NOT_AUTHENTICATED, raw=True, **fields)
        assert err.message, cls.__name__
    # a group SEND is a session request like any other
    await c.fail(Send, ErrorCode.NOT_AUTHENTICATED, raw=True, to="", group=1, cmid="x", text="hi")
    # TYPING is one-way: its refusal comes with rid 0
    await c.write_raw(Typing(rid=0, typing=True, to="bob").encode())
    err = await c.push_of(Error)
    assert (err.code, err.rid) == (ErrorCode.NOT_AUTHENTICATED, 0)
    await c.assert_no_push()  # and the connection is still open


@pytest.mark.parametrize("when", ["before login", "after a failed login"])
async def test_social_requests_need_a_session(tmp_path, when: str) -> None:
    async with social_server(tmp_path) as net:
        await net.register("alice", "bob")
        bob = await net.user("bob")
        c = await net.anonymous()
        if when == "after a failed login":
            await c.fail(
                Login,
                ErrorCode.BAD_CREDENTIALS,
                username="alice",
                password="wrong password",
                device="d1",
            )
        await refuse_all(c)
        await bob.assert_no_push()  # nothing reached anyone (no request, no typing)
        # nothing took effect: alice logs in on the same connection and finds it all default
        await c.login("alice", device="d2")
        await c.sync_all()
        p = await c.get(GetProfile, Profile, user="alice")
        assert (p.display_name, p.status) == ("", "")
        pv = await c.get(GetPrivacy, Privacy)
        assert (pv.presence, pv.profile, pv.messages) == ("contacts", "everyone", "everyone")
        assert (await c.get(ListGroups, GroupList)).groups == ()
        cl = await bob.contacts()
        assert (cl.incoming, cl.blocked) == ((), ())


# Authenticated, but malformed: the field checks answer 1003 with the request's rid.
MALFORMED: list[tuple[type[Message], dict]] = [
    (GroupCreate, {"name": "", "members": []}),
    (GroupCreate, {"name": "g"}),
    (GroupCreate, {"name": "g", "members": "bob"}),
    (GroupCreate, {"name": "g", "members": [], "topic": "t" * 257}),
    (GetGroup, {"group": "1"}),
    (GroupAdd, {"group": 1, "users": []}),
    (GroupRemove, {"group": 1}),
    (GroupUpdate, {"group": 1, "name": ""}),
    (GroupSetRole, {"group": 1, "user": "bob", "role": "owner"}),
    (Read, {"conv": 1, "pos": -1}),
    (Read, {"conv": 1}),
    (ListConversations, {"limit": 0}),
    (ListConversations, {"limit": 101}),
    (ListConversations, {"before_ts": "yesterday"}),
    (GetPresence, {"users": []}),
    (GetPresence, {"users": [f"u{i}" for i in range(101)]}),
    (ContactRequest, {}),
    (GetProfile, {"user": "x" * 257}),
    (SetProfile, {"display_name": "x" * 65}),
    (SetProfile, {"status": 7}),
    (SetPrivacy, {"messages": "nobody"}),
    (SetPrivacy, {"profile": "friends"}),
    (Send, {"to": "bob", "group": 1, "cmid": "x", "text": "both"}),
]


async def test_malformed_social_requests_are_1003(tmp_path) -> None:
    async with social_server(tmp_path) as net:
        alice, bob = await net.users("alice", "bob")
        # malformed frames count towards the protocol-error limit (10 per connection), so
        # the table is spread over several connections of the same user
        per_conn = 5
        for start in range(0, len(MALFORMED), per_conn):
            c = await net.user("alice", f"m{start}")
            for cls, payload in MALFORMED[start : start + per_conn]:
                rid = c.rid()
                await c.write_frame(int(cls.TYPE), rid, payload)
                ans = await c.answer(rid)
                assert isinstance(ans, Error) and ans.code == ErrorCode.INVALID_FIELD, (
                    f"{cls.__name__} {str(payload)[:80]} was answered {ans}"
                )
            await c.assert_no_push()
        await alice.assert_no_push()
        await bob.assert_no_push()
        assert (await alice.get(ListGroups, GroupList)).groups == ()
