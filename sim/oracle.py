"""The invariants, checked against what the simulated clients saw.

The oracle never asks the server what is true: it keeps what the clients were told (SENT
answers, OK positions, HISTORY pages) and what their devices received (update-log entries),
and checks that these agree with each other and with the delivery semantics of SPEC.md
sections 10 and 17. Each check runs as soon as the entries it needs are known, so a broken
invariant is reported at the step that broke it; `final()` adds the checks that need the
complete picture (after every device made a last sync at quiescence).

Invariants (their names appear in failure reports):

- `no-gap`: a device receives its user's log without holes: a push or page entry with a seq
  above its cursor + 1 is a gap, a push at or below it on a live connection a duplicate, a
  last SYNC page whose head is above what it gave a lie (checked by the device, client.py).
- `devices-agree`: every device of a user sees the same entry at each seq.
- `exactly-once`: a message appears at most once in a user's log.
- `in-order`: within a user's log, a conversation's positions grow with seq.
- `timeline-agrees`: every participant of a conversation sees the same entry at each position.
- `cmid-once`: a (sender, cmid) pair names one message; every SENT for it carries its fields.
- `sent-delivered`: every SENT message is in the sender's log at SENT.seq, in the
  recipient's log (direct), or at SENT.pos of the group's timeline.
- `members-only`: a group entry reaches exactly the members at its position (plus the user
  a `removed`/`left` event removes); a message's sender is a member.
- `not-blocked`: a direct message never lands in the log of a user who had blocked the
  sender when it was committed (the block state is read off the user's own log).
- `history-joined`: a group HISTORY page holds only positions since the requester joined
  (the membership interval containing the page) and the entries the timeline has there.
- `ok-pos`: the pos of a group request's OK names an event of that request in the timeline.
- `live-complete`: at quiescence, a live connection has been pushed its user's whole log.
- `no-internal-error`: no request is answered with 5001 and nothing raises on the loop.
- `progress`: at quiescence every device gets connected and live and every send settles.
- `wallet-ledger`, `wallet-key-once`, `wallet-claim-once`: the wallet's (sim/wallet.py).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from liaotian.protocol import ChatMessage, Sent, Update

Entry = tuple[Any, ...]


def freeze(v: Any) -> Any:
    """A hashable, comparable copy of decoded msgpack data."""
    if isinstance(v, dict):
        return tuple(sorted((k, freeze(x)) for k, x in v.items()))
    if isinstance(v, list | tuple):
        return tuple(freeze(x) for x in v)
    return v


def message_entry(m: ChatMessage) -> Entry:
    return (
        "m",
        m.id,
        m.conv,
        m.pos,
        m.sender,
        m.to,
        m.group,
        m.ts,
        m.cmid,
        m.text,
        freeze(m.event),
    )


def update_entry(u: Update) -> Entry:
    if u.message is not None:
        return message_entry(u.message)
    return ("k", u.kind, freeze(u.data))


def sent_entry(user: str, to: str, group: int | None, text: str, s: Sent) -> Entry:
    """The entry a SENT stands for in the sender's own log."""
    return (
        "m",
        s.id,
        s.conv,
        s.pos,
        user,
        "" if group is not None else to,
        group,
        s.ts,
        s.cmid,
        text,
        None,
    )


def describe(e: Entry | None) -> str:
    if e is None:
        return "nothing"
    if e[0] == "m":
        _, mid, conv, pos, sender, to, group, _ts, cmid, text, event = e
        where = f"group {group}" if group is not None else f"to {to}"
        what = f"event {dict(event)}" if event else f"text {text!r} cmid {cmid}"
        return f"message {mid} conv {conv} pos {pos} from {sender} {where}: {what}"
    return f"kind {e[1]} {dict(e[2])}"


class Violation(Exception):
    def __init__(self, invariant: str, detail: str) -> None:
        super().__init__(f"{invariant}: {detail}")
        self.invariant = invariant
        self.detail = detail


@dataclass(slots=True)
class UserLog:
    """The oracle's copy of one user's update log (as far as any device has read it)."""

    name: str
    log: dict[int, Entry] = field(default_factory=dict)
    head: int = 0
    msg_seq: dict[int, int] = field(default_factory=dict)  # message id -> seq
    conv_pos: dict[int, int] = field(default_factory=dict)  # conv -> last pos seen
    blocked: dict[str, bool] = field(default_factory=dict)  # toggled by "changed" entries


@dataclass(slots=True)
class Timeline:
    """One conversation's entries by position, and who received which."""

    conv: int
    group: bool = False
    entries: dict[int, Entry] = field(default_factory=dict)
    receivers: defaultdict[int, set[str]] = field(default_factory=lambda: defaultdict(set))
    done: int = 0  # positions 1..done are known and evaluated (groups)
    members: set[str] = field(default_factory=set)
    owner: str = ""  # the creator (the workload makes no transfers)
    allowed: dict[int, frozenset[str]] = field(default_factory=dict)
    intervals: defaultdict[str, list[list[int]]] = field(
        default_factory=lambda: defaultdict(list)
    )  # user -> [[join pos, leave pos or 0]]


@dataclass(frozen=True, slots=True)
class SentRecord:
    user: str
    to: str
    group: int | None
    text: str
    sent: Sent


@dataclass(frozen=True, slots=True)
class OkRecord:
    user: str
    group: int
    pos: int
    event: str  # the event type the request appends


@dataclass(frozen=True, slots=True)
class HistoryRecord:
    user: str
    group: int
    entries: tuple[Entry, ...]


class Oracle:
    def __init__(self) -> None:
        self.users: dict[str, UserLog] = {}
        self.timelines: dict[int, Timeline] = {}
        self.cmids: dict[tuple[str, str], int] = {}
        self.sent: dict[tuple[str, str], SentRecord] = {}
        self.oks: list[OkRecord] = []
        self.histories: list[HistoryRecord] = []
        self.failures: list[Violation] = []
        self.on_fail: Callable[[Violation], None] = lambda v: None

    def fail(self, invariant: str, detail: str) -> None:
        v = Violation(invariant, detail)
        self.failures.append(v)
        self.on_fail(v)

    def user(self, name: str) -> UserLog:
        u = self.users.get(name)
        if u is None:
            u = self.users[name] = UserLog(name)
        return u

    def _timeline(self, conv: int, group: bool) -> Timeline:
        t = self.timelines.get(conv)
        if t is None:
            t = self.timelines[conv] = Timeline(conv, group)
        return t

    # ------------------------------------------------------------------ log entries

    def accept(self, user: str, device: str, seq: int, entry: Entry) -> None:
        """A device of `user` took `entry` as seq `seq` of the log (its cursor + 1)."""
        u = self.user(user)
        known = u.log.get(seq)
        if known is not None:
            if known != entry:
                self.fail(
                    "devices-agree",
                    f"{user}/{device} got seq {seq} = {describe(entry)}"
                    f" where another device got {describe(known)}",
                )
            return
        if seq != u.head + 1:  # the device accepted its cursor + 1, so the log reached seq-1
            self.fail("no-gap", f"{user}/{device} took seq {seq} with the log at {u.head}")
        u.log[seq] = entry
        u.head = max(u.head, seq)
        if entry[0] == "m":
            self._message(u, seq, entry)
        elif entry[1] == 3:
            data = dict(entry[2])
            if data.get("event") == "changed" and isinstance(data.get("user"), str):
                other = data["user"]
                u.blocked[other] = not u.blocked.get(other, False)

    def _message(self, u: UserLog, seq: int, e: Entry) -> None:
        _, mid, conv, pos, sender, to, group, _ts, cmid, _text, _event = e
        prev = u.msg_seq.get(mid)
        if prev is not None:
            self.fail(
                "exactly-once",
                f"message {mid} is in {u.name}'s log twice: seq {prev} and {seq} ({describe(e)})",
            )
        u.msg_seq[mid] = seq
        last = u.conv_pos.get(conv, 0)
        if pos <= last:
            self.fail(
                "in-order",
                f"{u.name}'s log has conv {conv} pos {pos} at seq {seq} after pos {last}",
            )
        u.conv_pos[conv] = max(last, pos)
        if cmid:
            first = self.cmids.setdefault((sender, cmid), mid)
            if first != mid:
                self.fail("cmid-once", f"{sender}'s cmid {cmid} names messages {first} and {mid}")
        t = self._timeline(conv, group is not None)
        other = t.entries.get(pos)
        if other is None:
            t.entries[pos] = e
        elif other != e:
            self.fail(
                "timeline-agrees",
                f"conv {conv} pos {pos}: {u.name} has {describe(e)}, "
                f"another participant {describe(other)}",
            )
        if group is None:
            if u.name not in (sender, to):
                self.fail("members-only", f"{u.name} got a direct message of {sender} and {to}")
            elif sender != u.name and u.blocked.get(sender, False):
                self.fail(
                    "not-blocked",
                    f"{u.name} had blocked {sender} (by its own log) when "
                    f"{describe(e)} landed at seq {seq}",
                )
            return
        t.receivers[pos].add(u.name)
        if pos <= t.done:
            self._check_receiver(t, pos, u.name)
        else:
            self._advance(t)

    def _check_receiver(self, t: Timeline, pos: int, user: str) -> None:
        if user not in t.allowed[pos]:
            self.fail(
                "members-only",
                f"{user} got group {t.conv} pos {pos} "
                f"({describe(t.entries[pos])}) but the members there are "
                f"{sorted(t.allowed[pos])}",
            )

    def _advance(self, t: Timeline) -> None:
        """Evaluate membership along the known prefix of a group's timeline."""
        while t.done + 1 in t.entries:
            pos = t.done + 1
            e = t.entries[pos]
            sender, event = e[4], e[10]
            ev = dict(event) if event else None
            users = set(ev.get("users", ())) if ev else set()
            kind = ev.get("type") if ev else None
            if kind == "created":
                t.owner = sender
                t.members = set(users)
                allowed = frozenset(t.members)
                for who in users:
                    t.intervals[who].append([pos, 0])
            elif kind == "added":
                t.members |= users
                allowed = frozenset(t.members)
                for who in users:
                    t.intervals[who].append([pos, 0])
            elif kind in ("removed", "left"):
                allowed = frozenset(t.members | users)
                t.members -= users
                for who in users:
                    if t.intervals[who] and t.intervals[who][-1][1] == 0:
                        t.intervals[who][-1][1] = pos
            else:
                allowed = frozenset(t.members)
                if sender not in t.members:
                    self.fail(
                        "members-only",
                        f"{sender} is not a member of group {t.conv} but "
                        f"pos {pos} is theirs: {describe(e)}",
                    )
            t.allowed[pos] = allowed
            t.done = pos
            for who in sorted(t.receivers.get(pos, ())):
                self._check_receiver(t, pos, who)

    # ------------------------------------------------------------------ answers

    def sent_answer(self, rec: SentRecord) -> None:
        key = (rec.user, rec.sent.cmid)
        first = self.sent.get(key)
        if first is None:
            self.sent[key] = rec
        else:
            a, b = first.sent, rec.sent
            if (a.id, a.conv, a.pos, a.seq, a.ts) != (b.id, b.conv, b.pos, b.seq, b.ts):
                self.fail(
                    "cmid-once",
                    f"{rec.user}'s cmid {b.cmid} was answered with message "
                    f"{a.id} (pos {a.pos}, seq {a.seq}) and then {b.id} "
                    f"(pos {b.pos}, seq {b.seq}, duplicate={b.duplicate})",
                )
        mid = self.cmids.setdefault(key, rec.sent.id)
        if mid != rec.sent.id:
            self.fail(
                "cmid-once",
                f"{rec.user}'s cmid {rec.sent.cmid} names message {mid} in "
                f"a log but SENT says {rec.sent.id}",
            )

    def ok_answer(self, rec: OkRecord) -> None:
        self.oks.append(rec)

    def history_answer(self, rec: HistoryRecord) -> None:
        self.histories.append(rec)

    # ------------------------------------------------------------------ the end

    def final(self, heads: dict[str, int]) -> None:
        """Checks that need every device synced to its user's head (`heads`: the server's)."""
        for name, head in sorted(heads.items()):
            u = self.user(name)
            if u.head != head:
                self.fail(
                    "sent-delivered",
                    f"{name}'s devices reached seq {u.head}, the server's log ends at {head}",
                )
        for (user, cmid), rec in sorted(self.sent.items()):
            s = rec.sent
            u = self.user(user)
            got = u.log.get(s.seq)
            if got is None or got[0] != "m" or got[1] != s.id:
                self.fail(
                    "sent-delivered",
                    f"{user}'s SENT for {cmid} says seq {s.seq} is "
                    f"message {s.id}; the log has {describe(got)}",
                )
            if rec.group is None:
                r = self.users.get(rec.to)
                if r is None or s.id not in r.msg_seq:
                    self.fail(
                        "sent-delivered",
                        f"{user}'s message {s.id} ({cmid}) to {rec.to} is not in {rec.to}'s log",
                    )
            else:
                t = self.timelines.get(rec.group)
                e = t.entries.get(s.pos) if t is not None else None
                if e is None or e[1] != s.id:
                    self.fail(
                        "sent-delivered",
                        f"{user}'s message {s.id} ({cmid}) to group "
                        f"{rec.group} is not at pos {s.pos}: "
                        f"{describe(e)}",
                    )
        for conv, t in sorted(self.timelines.items()):
            if not t.group:
                continue
            top = max(t.entries)
            if t.done != top:
                self.fail(
                    "members-only",
                    f"group {conv}'s timeline has no entry at pos "
                    f"{t.done + 1} though one at {top} exists",
                )
                continue
            for pos in range(1, top + 1):
                reached = t.receivers.get(pos, set())
                if reached != t.allowed[pos]:
                    self.fail(
                        "members-only",
                        f"group {conv} pos {pos} "
                        f"({describe(t.entries[pos])}) reached "
                        f"{sorted(reached)}, the members there are "
                        f"{sorted(t.allowed[pos])}",
                    )
        for ok in self.oks:
            t = self.timelines.get(ok.group)
            e = t.entries.get(ok.pos) if t is not None else None
            ev = dict(e[10]) if e is not None and e[10] else {}
            if e is None or ev.get("type") != ok.event or e[4] != ok.user:
                self.fail(
                    "ok-pos",
                    f"{ok.user}'s OK for {ok.event} in group {ok.group} says pos "
                    f"{ok.pos}; the timeline has {describe(e)}",
                )
        for h in self.histories:
            self._check_history(h)

    def _check_history(self, h: HistoryRecord) -> None:
        if not h.entries:
            return
        t = self.timelines.get(h.group)
        if t is None:
            self.fail("history-joined", f"{h.user} paged group {h.group}, which no log has")
            return
        positions = [e[3] for e in h.entries]
        newest = max(positions)
        span = next(
            (
                iv
                for iv in t.intervals.get(h.user, ())
                if iv[0] <= newest and (iv[1] == 0 or newest <= iv[1])
            ),
            None,
        )
        if span is None:
            self.fail(
                "history-joined",
                f"{h.user} paged group {h.group} up to pos {newest} but was no member there",
            )
            return
        for e in h.entries:
            if e[3] < span[0]:
                self.fail(
                    "history-joined",
                    f"{h.user} joined group {h.group} at pos {span[0]} "
                    f"but HISTORY showed pos {e[3]} ({describe(e)})",
                )
                return
            if t.entries.get(e[3]) != e:
                self.fail(
                    "history-joined",
                    f"{h.user}'s HISTORY of group {h.group} has "
                    f"{describe(e)}; the timeline has "
                    f"{describe(t.entries.get(e[3]))}",
                )
                return
