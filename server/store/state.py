"""In-memory images of the rows the writer consults while planning a batch.

The writer owns these caches; a batch works on copies (copy-on-write) and publishes them
only after its COMMIT, so a failed commit leaves the caches as they were.
"""

from __future__ import annotations

from dataclasses import dataclass, field

ROLE_MEMBER, ROLE_ADMIN, ROLE_OWNER = 0, 1, 2
ROLE_NAMES = {ROLE_MEMBER: "member", ROLE_ADMIN: "admin", ROLE_OWNER: "owner"}
ROLE_BY_NAME = {v: k for k, v in ROLE_NAMES.items()}

REL_CONTACT, REL_REQUESTED, REL_BLOCKED = 1, 2, 3
# A request to someone who blocked the requester: listed as the requester's outgoing
# request (so they cannot tell), never shown to its target.
REL_REQUEST_DROPPED = 4
VIS_EVERYONE, VIS_CONTACTS, VIS_NOBODY = 0, 1, 2
VISIBILITY_NAMES = {VIS_EVERYONE: "everyone", VIS_CONTACTS: "contacts", VIS_NOBODY: "nobody"}
VISIBILITY_BY_NAME = {v: k for k, v in VISIBILITY_NAMES.items()}


@dataclass(slots=True)
class Member:
    role: int
    joined_pos: int
    joined: int  # ms


@dataclass(slots=True)
class GroupState:
    conv: int
    name: str
    topic: str
    owner: int
    created: int
    members: dict[int, Member] = field(default_factory=dict)

    def copy(self) -> GroupState:
        return GroupState(self.conv, self.name, self.topic, self.owner, self.created,
                          {u: Member(m.role, m.joined_pos, m.joined)
                           for u, m in self.members.items()})


@dataclass(slots=True)
class Social:
    """One user's relations and privacy settings."""

    contacts: set[int] = field(default_factory=set)
    outgoing: set[int] = field(default_factory=set)  # requests this user sent
    incoming: set[int] = field(default_factory=set)  # requests sent to this user
    blocked: set[int] = field(default_factory=set)  # users this user blocked
    presence: int = VIS_CONTACTS
    profile: int = VIS_EVERYONE
    messages: int = VIS_EVERYONE  # VIS_EVERYONE or VIS_CONTACTS
    groups: int = VIS_CONTACTS  # who may add this user to a group
    groups_owned: int = 0  # groups whose owner this user is
    groups_joined: int = 0  # groups this user is a member of (owned ones included)
    receipts: int = VIS_CONTACTS  # who sees this user's read and delivered positions

    def copy(self) -> Social:
        return Social(set(self.contacts), set(self.outgoing), set(self.incoming),
                      set(self.blocked), self.presence, self.profile, self.messages,
                      self.groups, self.groups_owned, self.groups_joined,
                      receipts=self.receipts)

    def add_relation(self, other: int, kind: int) -> None:
        """File one `relations` row of this user (user_id = this user) into its set."""
        if kind == REL_CONTACT:
            self.contacts.add(other)
        elif kind in (REL_REQUESTED, REL_REQUEST_DROPPED):
            self.outgoing.add(other)
        elif kind == REL_BLOCKED:
            self.blocked.add(other)

    def accepts_messages_from(self, other: int) -> bool:
        if other in self.blocked:
            return False
        return self.messages == VIS_EVERYONE or other in self.contacts

    def accepts_groups_from(self, other: int) -> bool:
        """Whether `other` may add this user to a group (privacy `groups`)."""
        if other in self.blocked or self.groups == VIS_NOBODY:
            return False
        return self.groups == VIS_EVERYONE or other in self.contacts

    def shows(self, setting: int, viewer: int) -> bool:
        """Whether `viewer` may see what `setting` (presence, profile or receipts) guards."""
        if viewer in self.blocked:
            return False
        if setting == VIS_EVERYONE:
            return True
        return setting == VIS_CONTACTS and viewer in self.contacts
