"""One simulation run: a seed becomes users, devices, a server, a workload and faults.

The run has three phases, all on the virtual clock of one `SimLoop`:

1. Setup: the server starts on a fresh in-memory store; each user's first device
   registers and logs in; every user opens its `groups` privacy to everyone (so group
   membership is decided by the workload, not by contact lists).
2. Steps: each step draws one action from its own generator (`Random(f"{seed}/{step}")`,
   so removing a fault from a step leaves every other step's choice as it was): a send,
   a group change, a block, a read marker, a HISTORY, a device going on- or offline, or a
   fault (a reset, a half-open connection either way, a server crash, a graceful restart).
   Then the loop runs for a random while and the oracle's checks run.
3. Quiescence: no more faults; every device comes online; the run waits until every
   device is live and every send is settled; every live connection must then have been
   pushed its user's whole log; each device makes a last SYNC and the final checks run.

The first broken invariant ends the run (`SimResult.failure`).
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import logging
import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from liaotian.protocol import Ack, Message, Sync, Updates
from liaotian.protocol.social import (
    Block,
    GroupAdd,
    GroupCreate,
    GroupLeave,
    GroupRemove,
    Read,
    SetPrivacy,
    Unblock,
)
from liaotian.server.app import Server
from liaotian.server.config import Config

from . import mutations
from . import store as simstore
from .client import Device, SimUser
from .loop import INCARNATION, SimLoop, SimStalled, deterministic
from .net import NetParams, Network
from .oracle import Oracle, Violation
from .wallet import SIM_TASKS, Wallet

# Server settings of a simulation: production defaults, except cheap password hashing,
# short timers (so half-open connections are noticed within a run), no throttling of the
# simulated users' registrations and writes, and nothing pruned.
SIM_SETTINGS: dict[str, Any] = {
    "host": "sim",
    "port": 0,
    "db_path": ":memory:",
    "argon2_time_cost": 1,
    "argon2_memory_kib": 8,
    "argon2_parallelism": 1,
    "heartbeat_interval": 5.0,
    "idle_timeout": 15.0,
    "auth_timeout": 10.0,
    "write_timeout": 10.0,
    "shutdown_grace": 2.0,
    "register_rate": 1000.0,
    "register_burst": 1000.0,
    "send_rate": 1000.0,
    "send_burst": 10_000.0,
    "write_rate": 1000.0,
    "write_burst": 10_000.0,
    "retention_days": 0.0,
    "stats_interval": 0.0,
    "wallet_tasks": SIM_TASKS,
}
NAMES = ("alice", "bob", "carol", "dave", "erin", "frank", "grace", "heidi")
DEFAULT_STEPS = 120
QUIESCE_LIMIT = 240.0  # virtual seconds the final phase may take before `progress` fails


@dataclass(frozen=True, slots=True)
class SimOptions:
    seed: int
    steps: int = DEFAULT_STEPS
    users: int = 0  # 0: drawn from the seed (2..5)
    max_devices: int = 3  # devices per user are drawn from 1..max_devices
    faults: bool = True
    skip: frozenset[int] = frozenset()  # steps left out (shrinking)
    mutation: str | None = None


@dataclass(slots=True)
class SimResult:
    options: SimOptions
    failure: Violation | None = None
    step: int | None = None  # the step after which the failure was found (None: at the end)
    steps_run: int = 0
    faults: list[int] = field(default_factory=list)  # steps that injected a fault
    trace: list[str] = field(default_factory=list)
    virtual_seconds: float = 0.0
    digest: int = 0  # a hash of the trace: equal for equal runs

    @property
    def ok(self) -> bool:
        return self.failure is None


class World:
    def __init__(self, opts: SimOptions) -> None:
        self.opts = opts
        seed = opts.seed
        self.loop = SimLoop()
        self.rng = random.Random(f"liaotian-sim/{seed}")
        self.client_rng = random.Random(f"liaotian-sim/{seed}/clients")
        self.secret_rng = random.Random(f"liaotian-sim/{seed}/secrets")
        self.store_rng = random.Random(f"liaotian-sim/{seed}/store")
        self.net = Network(self.loop, random.Random(f"liaotian-sim/{seed}/net"), NetParams())
        self.oracle = Oracle()
        self.oracle.on_fail = lambda v: self.trace(f"VIOLATION {v}")
        self.config = Config().with_overrides(SIM_SETTINGS)
        self.limits = self.config.limits()
        n = opts.users or self.rng.randint(2, 5)
        self.users = [
            SimUser(self, i, NAMES[i], self.rng.randint(1, opts.max_devices)) for i in range(n)
        ]
        self.devices: list[Device] = [d for u in self.users for d in u.devices]
        self.groups: list[int] = []
        self.wallet = Wallet(self)
        self.lines: list[str] = []
        self.server: Server | None = None
        self.store: Any = None
        self.incarnation = 0
        self._over = False  # the run is over: what the loop reports now is its teardown
        self.result = SimResult(opts)

    # ------------------------------------------------------------------ tracing

    def trace(self, line: str) -> None:
        self.lines.append(f"{self.loop.time():9.3f} {line}")

    # ------------------------------------------------------------------ running

    def run(self) -> SimResult:
        res = self.result
        with (
            deterministic(self.loop, self.secret_rng),
            _captured_logs(self),
            mutations.applied(self.opts.mutation),
        ):
            self.loop.set_exception_handler(self._loop_error)
            try:
                self.loop.run_until_complete(self._main())
            except SimStalled as exc:
                self.oracle.fail("progress", f"the loop stalled: {exc}")
            finally:
                self._shutdown_loop()
        if self.oracle.failures:
            res.failure = self.oracle.failures[0]
        res.trace = self.lines
        res.virtual_seconds = self.loop.time()
        logs = [f"{name} {sorted(u.log.items())}" for name, u in sorted(self.oracle.users.items())]
        res.digest = _digest(self.lines + logs)
        return res

    def _shutdown_loop(self) -> None:
        loop = self.loop
        self._over = True
        with contextlib.suppress(Exception):
            for incarnation in range(self.incarnation + 1):  # 0: the simulation's own
                loop.crash(incarnation)
            for _ in range(100):  # let the cancelled tasks unwind
                if not getattr(loop, "_ready"):  # noqa: B009
                    break
                loop._run_once()  # type: ignore[attr-defined]
        loop.close()

    def _loop_error(self, loop: asyncio.AbstractEventLoop, context: dict[str, Any]) -> None:
        exc = context.get("exception")
        msg = context.get("message", "")
        task = context.get("task") or context.get("future")
        if isinstance(exc, asyncio.CancelledError) or self._over:
            return
        if task is not None and self.loop.is_dead(getattr(task, "sim_incarnation", 0)):
            return  # a crashed server's task, left waiting for what never comes
        self.oracle.fail("no-internal-error", f"the loop reported: {msg} {exc!r}")

    async def _main(self) -> None:
        await self.start_server(simstore.fresh(self))
        if await self._setup():
            for step in range(self.opts.steps):
                srng = random.Random(f"liaotian-sim/{self.opts.seed}/{step}")
                self._step(step, srng)
                self.result.steps_run = step + 1
                # a third of the steps start together with the next one: concurrent
                # requests (and a shared group commit) are the interesting cases
                await asyncio.sleep(0 if srng.random() < 0.3 else srng.expovariate(1 / 0.05))
                await self.wallet.check()
                if self.oracle.failures:
                    self.result.step = step
                    return
        await self._quiesce()
        if not self.oracle.failures:
            await self.wallet.check()  # and once more over the final state

    # ------------------------------------------------------------------ the server

    async def start_server(self, store: Any) -> None:
        self.incarnation += 1
        token = INCARNATION.set(self.incarnation)
        try:
            ctx = contextvars.copy_context()
        finally:
            INCARNATION.reset(token)
        self.store = store
        server = ctx.run(Server, self.config, store=store)
        task = ctx.run(self.loop.create_task, server.start())
        await asyncio.shield(task)
        self.server = server
        self.trace(f"server {self.incarnation} up")

    def crash(self, srng: random.Random) -> None:
        old, store = self.incarnation, self.store
        self.server = None
        committed = simstore.committed_state(store)
        self.loop.crash(old)
        self.net.crash_incarnation(old, lambda link: srng.random() < 0.5)
        simstore.kill(store)
        down = srng.uniform(0.05, 0.5)
        self.trace(f"server {old} crashed; back in {down:.2f} s")

        def restart() -> None:
            self.loop.create_task(self.start_server(simstore.restored(self, committed)))

        self.loop.call_later(down, restart)

    def restart(self, srng: random.Random) -> None:
        server, old = self.server, self.incarnation
        if server is None:
            return
        self.server = None
        self.trace(f"server {old} shutting down gracefully")

        ctx = contextvars.copy_context()
        ctx.run(INCARNATION.set, old)

        async def cycle() -> None:
            await ctx.run(self.loop.create_task, server.shutdown())
            store = self.store
            committed = simstore.committed_state(store)
            self.loop.crash(old)  # whatever it left running
            self.net.crash_incarnation(old, lambda link: True)
            await asyncio.sleep(srng.uniform(0.05, 0.5))
            await self.start_server(simstore.restored(self, committed))

        self.loop.create_task(cycle())

    # ------------------------------------------------------------------ phases

    async def _until(
        self, cond: Callable[[], bool], what: str | Callable[[], str], limit: float
    ) -> bool:
        deadline = self.loop.time() + limit
        while not cond():
            if self.oracle.failures:
                return False
            if self.loop.time() > deadline:
                why = what if isinstance(what, str) else what()
                self.oracle.fail("progress", f"after {limit:.0f} s: {why}")
                return False
            await asyncio.sleep(0.05)
        return True

    async def _setup(self) -> bool:
        self.trace(f"users {[(u.name, len(u.devices)) for u in self.users]}")
        for u in self.users:
            u.devices[0].go_online()
        if not await self._until(
            lambda: all(
                u.devices[0].conn is not None and u.devices[0].conn.live for u in self.users
            ),
            "every user registered and logged in",
            60.0,
        ):
            return False
        opened: set[str] = set()
        for u in self.users:
            conn = u.devices[0].conn
            assert conn is not None

            def done(m: Message, name: str = u.name) -> None:
                opened.add(name)

            conn.request(lambda rid: SetPrivacy(rid=rid, groups="everyone", coins="everyone"), done)
        if not await self._until(
            lambda: len(opened) == len(self.users), "every user opened its groups privacy", 60.0
        ):
            return False
        for _ in range(self.rng.randint(1, 2)):  # groups to start with
            self._create_group(self.rng)
        for d in self.devices:
            if self.rng.random() < 0.7:
                d.go_online()
        self.trace("setup done")
        return True

    async def _quiesce(self) -> None:
        self.trace("quiescence: no more faults, every device online")
        for d in self.devices:
            d.go_online()

        def settled() -> bool:
            if self.server is None:
                return False
            for d in self.devices:
                c = d.conn
                if c is None or not c.live or d.outbox or c._answers:
                    return False
            return True

        # a connection left half-open (the device thinks it is live, the server is gone)
        # is noticed by the device's idle timeout: wait that out first
        await asyncio.sleep(self.config.idle_timeout + self.config.heartbeat_interval)
        if not await self._until(settled, self._unsettled, QUIESCE_LIMIT):
            return
        await asyncio.sleep(2.0)  # pushes in flight land
        if not settled() and not await self._until(settled, self._unsettled, QUIESCE_LIMIT):
            return
        heads = await self._heads()
        for d in self.devices:
            head = heads[d.user.name]
            if d.cursor != head:
                self.oracle.fail(
                    "live-complete",
                    f"{d.label} is live at {d.cursor} but {d.user.name}'s log ends at {head}",
                )
        if self.oracle.failures:
            return
        # a last SYNC on every device: nothing new may come
        answers: dict[str, Updates] = {}
        for d in self.devices:
            conn = d.conn
            assert conn is not None

            def got(m: Message, label: str = d.label) -> None:
                if isinstance(m, Updates):
                    answers[label] = m

            conn.request(_sync_from(d.cursor), got)
        if not await self._until(
            lambda: len(answers) == len(self.devices), "the last SYNC of every device", 30.0
        ):
            return
        for d in self.devices:
            page = answers[d.label]
            if page.updates or page.more or page.head != d.cursor:
                self.oracle.fail(
                    "live-complete",
                    f"{d.label}'s last SYNC from {d.cursor} gave "
                    f"{[u.seq for u in page.updates]} "
                    f"head {page.head} more {page.more}",
                )
        self.oracle.final(heads)
        self.trace("final checks done")

    def _unsettled(self) -> str:
        if self.server is None:
            return "the server is down"
        out = []
        for d in self.devices:
            c = d.conn
            if c is None:
                out.append(f"{d.label} offline")
            elif not c.live:
                out.append(f"{d.label} not live")
            if d.outbox:
                out.append(f"{d.label} has unsent {sorted(d.outbox)}")
            if c is not None and c._answers:
                out.append(f"{d.label} waits for rids {sorted(c._answers)}")
        return "not settled: " + ", ".join(out)

    async def _heads(self) -> dict[str, int]:
        store = self.store
        heads = {}
        for u in self.users:
            rec = await store.user_by_name(u.name)
            heads[u.name] = await store.head(rec.id) if rec is not None else 0
        return heads

    # ------------------------------------------------------------------ the workload

    def _step(self, step: int, srng: random.Random) -> None:
        actions: list[tuple[float, Callable[[random.Random], str]]] = [
            (22, self._send_direct),
            (24, self._send_group),
            (4, self._create_group),
            (7, self._add_member),
            (6, self._remove_member),
            (3, self._leave),
            (3, self._block),
            (3, self._unblock),
            (3, self._read),
            (6, self._history),
            (3, self._offline),
            (5, self._online),
            (3, self.wallet.check_in),
            (5, self.wallet.pay),
            (2, self.wallet.red_packet),
            (4, self.wallet.claim),
        ]
        faults: list[tuple[float, Callable[[random.Random], str]]] = [
            (2.5, self._reset),
            (2.5, self._half_open_client),
            (1.5, self._half_open_server),
            (1, self._crash),
            (0.5, self._restart),
        ]
        pool = actions + (faults if self.opts.faults else [])
        chosen = srng.choices(pool, weights=[w for w, _ in pool])[0]
        act = chosen[1]
        is_fault = chosen in faults
        if step in self.opts.skip:
            self.trace(f"step {step}: (left out)")
            return
        what = act(srng)
        if is_fault and not what.startswith("-"):
            self.result.faults.append(step)
        self.trace(f"step {step}: {what}")

    # helpers

    def _live_device(self, srng: random.Random, user: SimUser | None = None) -> Device | None:
        pool = (
            user.online()
            if user
            else [d for d in self.devices if d.conn is not None and d.conn.live]
        )
        return srng.choice(pool) if pool else None

    def _user(self, name: str) -> SimUser:
        return next(u for u in self.users if u.name == name)

    def _members(self, group: int) -> list[str]:
        t = self.oracle.timelines.get(group)
        return sorted(t.members) if t is not None else []

    def _text(self, srng: random.Random) -> str:
        return (
            srng.choice(("hi", "hello", "ok", "see you", "on my way", "ping"))
            + f" {srng.randint(0, 999)}"
        )

    # actions

    def _send_direct(self, srng: random.Random) -> str:
        d = srng.choice(self.devices)
        to = srng.choice(self.users).name
        cmid = d.queue_send(to, None, self._text(srng))
        return f"{d.label} sends {cmid} to {to}"

    def _send_group(self, srng: random.Random) -> str:
        if not self.groups:
            return self._send_direct(srng)
        g = srng.choice(self.groups)
        members = self._members(g)
        names = members if members and srng.random() < 0.9 else [u.name for u in self.users]
        d = srng.choice(self._user(srng.choice(names)).devices)
        cmid = d.queue_send("", g, self._text(srng))
        return f"{d.label} sends {cmid} to group {g}"

    def _create_group(self, srng: random.Random) -> str:
        d = self._live_device(srng)
        if d is None or d.conn is None:
            return "-no device online to create a group"
        others = [u.name for u in self.users if u is not d.user]
        members = tuple(srng.sample(others, srng.randint(0, len(others))))
        name = f"g{srng.randint(1, 99)}"
        d.conn.create_group(lambda rid: GroupCreate(rid=rid, name=name, members=members))
        return f"{d.label} creates a group with {list(members)}"

    def _group_actor(
        self,
        srng: random.Random,
        owner: bool = False,
    ) -> tuple[Device, int, list[str]] | None:
        """A live device of a member of some group (mostly its owner, with `owner`)."""
        if not self.groups:
            return None
        g = srng.choice(self.groups)
        t = self.oracle.timelines.get(g)
        if t is None:
            return None
        members = sorted(t.members)
        online = [m for m in members if self._user(m).online()]
        if not online:
            return None
        who = srng.choice(online)
        if owner and t.owner in online and srng.random() < 0.8:
            who = t.owner
        d = self._live_device(srng, self._user(who))
        return (d, g, members) if d is not None else None

    def _add_member(self, srng: random.Random) -> str:
        found = self._group_actor(srng, owner=True)
        if found is None:
            return "-nobody to add anyone"
        d, g, members = found
        outside = [u.name for u in self.users if u.name not in members]
        if not outside or d.conn is None:
            return "-nobody to add"
        who = tuple(srng.sample(outside, srng.randint(1, len(outside))))
        d.conn.group_request(lambda rid: GroupAdd(rid=rid, group=g, users=who), g, "added")
        return f"{d.label} adds {list(who)} to group {g}"

    def _remove_member(self, srng: random.Random) -> str:
        found = self._group_actor(srng, owner=True)
        if found is None:
            return "-nobody to remove anyone"
        d, g, members = found
        others = [m for m in members if m != d.user.name]
        if not others or d.conn is None:
            return "-nobody to remove"
        who = srng.choice(others)
        d.conn.group_request(lambda rid: GroupRemove(rid=rid, group=g, user=who), g, "removed")
        talker = ""
        rest = [m for m in members if m != who]
        if rest and srng.random() < 0.5:  # the conversation goes on meanwhile
            sender = srng.choice(self._user(srng.choice(rest)).devices)
            cmid = sender.queue_send("", g, self._text(srng))
            talker = f" while {sender.label} sends {cmid} to it"
        return f"{d.label} removes {who} from group {g}{talker}"

    def _leave(self, srng: random.Random) -> str:
        found = self._group_actor(srng)
        if found is None or found[0].conn is None:
            return "-nobody to leave"
        d, g, _ = found
        assert d.conn is not None
        d.conn.group_request(lambda rid: GroupLeave(rid=rid, group=g), g, "left")
        return f"{d.label} leaves group {g}"

    def _block(self, srng: random.Random, block: bool = True) -> str:
        d = self._live_device(srng)
        if d is None or d.conn is None:
            return "-no device online to block"
        other = srng.choice([u.name for u in self.users if u is not d.user])
        cls = Block if block else Unblock
        verb = "blocks" if block else "unblocks"
        d.conn.simple(lambda rid: cls(rid=rid, user=other), f"{verb} {other}")
        return f"{d.label} {verb} {other}"

    def _unblock(self, srng: random.Random) -> str:
        return self._block(srng, block=False)

    def _read(self, srng: random.Random) -> str:
        d = self._live_device(srng)
        if d is None or d.conn is None:
            return "-no device online to read"
        u = self.oracle.user(d.user.name)
        if not u.conv_pos:
            return "-nothing to read"
        conv = srng.choice(sorted(u.conv_pos))
        pos = u.conv_pos[conv]
        d.conn.simple(lambda rid: Read(rid=rid, conv=conv, pos=pos), f"read conv {conv}@{pos}")
        if srng.random() < 0.5:
            d.conn.send_oneway(Ack(rid=0, seq=d.cursor))
        return f"{d.label} marks conv {conv} read up to {pos}"

    def _history(self, srng: random.Random) -> str:
        """A member pages a group's timeline: mostly one who joined after it began."""
        if not self.groups:
            return "-no history to page"
        g = srng.choice(self.groups)
        t = self.oracle.timelines.get(g)
        if t is None or not t.members:
            return "-no history to page"
        late = sorted(m for m in t.members if t.intervals[m] and t.intervals[m][-1][0] > 1)
        who = srng.choice(late if late and srng.random() < 0.8 else sorted(t.members))
        d = self._live_device(srng, self._user(who))
        if d is None or d.conn is None:
            return "-no device online to page history"
        limit = srng.choice((3, 10, 50))
        before = after = None
        anchor = srng.random()
        if anchor < 0.3:
            after = 0
        elif anchor < 0.5:
            before = max(t.entries, default=1)
        d.conn.history(g, limit, before, after)
        return f"{d.label} pages group {g} (limit {limit}, before {before}, after {after})"

    def _offline(self, srng: random.Random) -> str:
        d = srng.choice(self.devices)
        d.go_offline()
        return f"{d.label} goes offline"

    def _online(self, srng: random.Random) -> str:
        d = srng.choice(self.devices)
        d.go_online()
        return f"{d.label} comes online"

    # faults

    def _link(self, srng: random.Random) -> Any:
        links = [k for k in self.net.live_links() if k.client_up and k.server_up]
        return srng.choice(links) if links else None

    def _reset(self, srng: random.Random) -> str:
        link = self._link(srng)
        if link is None:
            return "-no connection to reset"
        link.reset()
        return f"FAULT reset {link.label}"

    def _half_open_client(self, srng: random.Random) -> str:
        link = self._link(srng)
        if link is None:
            return "-no connection to leave half-open"
        link.vanish_client()
        return f"FAULT half-open {link.label}: the device is gone, the server does not know"

    def _half_open_server(self, srng: random.Random) -> str:
        link = self._link(srng)
        if link is None:
            return "-no connection to leave half-open"
        link.vanish_server()
        return f"FAULT half-open {link.label}: the server side is gone, the device does not know"

    def _crash(self, srng: random.Random) -> str:
        if self.server is None:
            return "-server already down"
        self.crash(srng)
        return "FAULT server crash"

    def _restart(self, srng: random.Random) -> str:
        if self.server is None:
            return "-server already down"
        self.restart(srng)
        return "FAULT graceful restart"


def _sync_from(since: int) -> Callable[[int], Message]:
    return lambda rid: Sync(rid=rid, since=since)


def _digest(lines: list[str]) -> int:
    import hashlib

    h = hashlib.blake2b(digest_size=8)
    for line in lines:
        h.update(line.encode())
        h.update(b"\n")
    return int.from_bytes(h.digest(), "big")


class _LogCatcher(logging.Handler):
    def __init__(self, world: World) -> None:
        super().__init__(logging.ERROR)
        self.world = world

    def emit(self, record: logging.LogRecord) -> None:
        exc = f" {record.exc_info[1]!r}" if record.exc_info else ""
        self.world.oracle.fail(
            "no-internal-error", f"the server logged {record.levelname}: {record.getMessage()}{exc}"
        )


@contextlib.contextmanager
def _captured_logs(world: World) -> Iterator[None]:
    """Server log lines of ERROR and above are failures; the rest is not even formatted."""
    logger = logging.getLogger("liaotian")
    catcher = _LogCatcher(world)
    saved = logger.level, logger.propagate
    logger.setLevel(logging.ERROR)
    logger.propagate = False
    logger.addHandler(catcher)
    try:
        yield
    finally:
        logger.removeHandler(catcher)
        logger.setLevel(saved[0])
        logger.propagate = saved[1]


def run(opts: SimOptions) -> SimResult:
    """Run one simulation."""
    return World(opts).run()
