"""A deterministic asyncio event loop on a virtual clock, and the patches that make a run
reproducible.

`SimLoop` is a `BaseEventLoop` with no I/O: its "selector" never waits, it moves the
virtual clock to the next timer instead (the technique of `looptime` and aiotools'
virtual clock). Everything the server does with the loop (callbacks, timers, tasks,
futures) runs unchanged, in an order fixed by the order of the calls; a run never reads
the machine's clock. Work handed to an executor runs inline (the simulation has no
threads). The simulated network (net.py) schedules its deliveries as timers of this loop.

Crashes: every callback and task of a server belongs to its *incarnation* (a context
variable set in the context the network runs the server's protocol callbacks in, and in
which the server is started). `crash(incarnation)` cancels that incarnation's tasks in
the order they were created; a task the dead incarnation creates later is cancelled at
once.

`deterministic()` patches, for the duration of a run, what the server reads from the
machine: `time.time`/`time_ns`/`monotonic` follow the loop's clock (from a fixed epoch),
`secrets.token_bytes` (session tokens, the dummy password hash) and `os.urandom` (argon2's
salts) draw from a seeded `random.Random`, and connections hash by their number so sets of
them iterate in the same order in every run.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import itertools
import os
import random
import secrets
import time
from collections.abc import Callable, Coroutine, Iterator
from concurrent.futures import Executor
from typing import Any, TypeVar

T = TypeVar("T")

EPOCH = 1_700_000_000.0  # what time.time() says at virtual time 0 (2023-11-14T22:13:20Z)
INCARNATION: contextvars.ContextVar[int] = contextvars.ContextVar("sim_incarnation", default=0)


SPIN_LIMIT = 200_000  # loop iterations without the clock moving: a livelock


class SimStalled(RuntimeError):
    """Nothing is ready and no timer is pending: the run can never go on."""


class _VirtualSelector:
    """What BaseEventLoop._run_once polls: instead of waiting, move the clock."""

    def __init__(self, loop: SimLoop) -> None:
        self._loop = loop
        self._at = -1.0
        self._spins = 0  # loop iterations at the same instant

    def select(self, timeout: float | None) -> list[Any]:
        loop = self._loop
        if timeout is None:
            raise SimStalled("no callback is ready and no timer is pending")
        if loop._now == self._at:
            self._spins += 1
            if self._spins > SPIN_LIMIT:
                raise SimStalled(f"livelock: {SPIN_LIMIT} loop iterations at t={loop._now}")
        else:
            self._at, self._spins = loop._now, 0
        if timeout > 0:
            # exactly the next timer's time (no float drift from adding the timeout)
            scheduled: list[asyncio.TimerHandle] = getattr(loop, "_scheduled")  # noqa: B009
            when = scheduled[0].when() if scheduled else loop._now + timeout
            loop._now = max(loop._now, min(when, loop._now + timeout))
        return []

    def close(self) -> None:
        pass


class SimLoop(asyncio.BaseEventLoop):
    """An event loop whose time is virtual and which runs only callbacks and timers."""

    def __init__(self) -> None:
        super().__init__()
        self._now = 0.0
        self._selector = _VirtualSelector(self)
        self._clock_resolution = 1e-9
        self._tasks: list[asyncio.Task[Any]] = []  # live ones, in creation order
        self._dead: set[int] = set()  # crashed incarnations
        self.set_task_factory(self._make_task)  # type: ignore[arg-type]
        self.network: Any = None  # the simulated network (net.py) the listener joins

    # ------------------------------------------------------------------ clock

    def time(self) -> float:
        return self._now

    # ------------------------------------------------------------------ no I/O

    def _process_events(self, event_list: list[Any]) -> None:
        pass

    def _write_to_self(self) -> None:
        pass  # nothing waits in a real select(): there is no other thread to wake it

    def run_in_executor(  # type: ignore[override]
        self,
        executor: Executor | None,
        func: Callable[..., T],
        *args: Any,
    ) -> asyncio.Future[T]:
        """Run `func` now, on the loop (no threads in a simulation)."""
        fut: asyncio.Future[T] = self.create_future()
        try:
            fut.set_result(func(*args))
        except BaseException as exc:  # handed to whoever awaits it, as an executor would
            fut.set_exception(exc)
        return fut

    async def create_server(
        self, protocol_factory: Any, host: Any = None, port: Any = None, **kwargs: Any
    ) -> Any:
        """Listen on the simulated network (net.py): the server's `_bind` runs as is."""
        from .net import SimListener

        return SimListener(self.network, protocol_factory)

    # ------------------------------------------------------------------ tasks

    def _make_task(
        self,
        loop: asyncio.AbstractEventLoop,
        coro: Coroutine[Any, Any, Any],
        *,
        context: contextvars.Context | None = None,
    ) -> asyncio.Task[Any]:
        task: asyncio.Task[Any] = asyncio.Task(coro, loop=loop, context=context)
        owner = context.get(INCARNATION, 0) if context is not None else INCARNATION.get()
        task.sim_incarnation = owner  # type: ignore[attr-defined]
        if owner in self._dead:  # a crashed server's code still unwinding starts nothing
            self._cancel_after_first_step(task)
        self._tasks.append(task)
        if len(self._tasks) > 256:
            self._tasks = [t for t in self._tasks if not t.done()]
        return task

    def crash(self, incarnation: int) -> None:
        """Cancel every task of `incarnation`, oldest first; later ones are cancelled as
        soon as they have started."""
        self._dead.add(incarnation)
        for task in self._tasks:
            if getattr(task, "sim_incarnation", 0) == incarnation and not task.done():
                self._cancel_after_first_step(task)

    def _cancel_after_first_step(self, task: asyncio.Task[Any]) -> None:
        """A task cancelled before its coroutine started would never await what it was
        handed (a handler's coroutine: "never awaited"); its first step is queued already,
        so a cancel queued now comes after it."""
        if inspect.getcoroutinestate(task.get_coro()) == inspect.CORO_CREATED:  # type: ignore[arg-type]
            self.call_soon(task.cancel)
        else:
            task.cancel()

    def is_dead(self, incarnation: int) -> bool:
        return incarnation in self._dead

    def pending_tasks(self, incarnation: int) -> int:
        return sum(
            1
            for t in self._tasks
            if getattr(t, "sim_incarnation", 0) == incarnation and not t.done()
        )


# ---------------------------------------------------------------------- patches


class SeededBytes:
    """`secrets.token_bytes` drawing from a seeded generator."""

    def __init__(self, rng: random.Random) -> None:
        self._rng = rng

    def __call__(self, nbytes: int | None = None) -> bytes:
        return self._rng.randbytes(32 if nbytes is None else nbytes)


@contextlib.contextmanager
def deterministic(loop: SimLoop, rng: random.Random) -> Iterator[None]:
    """Within the block, the machine's clocks follow `loop`, secrets come from `rng`, and
    server connections hash by their (per-run) number."""
    from liaotian.server.net import transport

    saved_time = (time.time, time.time_ns, time.monotonic)
    saved_token = secrets.token_bytes
    saved_urandom = os.urandom
    saved_ids = transport._ids
    had_hash = "__hash__" in transport.ServerConnection.__dict__
    saved_hash = transport.ServerConnection.__dict__.get("__hash__")

    def wall() -> float:
        return EPOCH + loop._now

    def wall_ns() -> int:
        return int((EPOCH + loop._now) * 1e9)

    def mono() -> float:
        return loop._now

    def conn_hash(self: Any) -> int:
        return int(self.id)

    time.time = wall
    time.time_ns = wall_ns
    time.monotonic = mono
    secrets.token_bytes = os.urandom = SeededBytes(rng)  # tokens; argon2's salts
    transport._ids = itertools.count(1)
    setattr(transport.ServerConnection, "__hash__", conn_hash)  # noqa: B010
    try:
        yield
    finally:
        time.time, time.time_ns, time.monotonic = saved_time
        secrets.token_bytes = saved_token
        os.urandom = saved_urandom
        transport._ids = saved_ids
        if had_hash:
            setattr(transport.ServerConnection, "__hash__", saved_hash)  # noqa: B010
        else:
            del transport.ServerConnection.__hash__
