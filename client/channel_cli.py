"""The `liaotian channel` commands (cli.py registers them and opens the session):

    liaotian channel create NAME [--about A] [--rules R] [--closed] [--members-post]
                            [--slow-mode S]               prints the id and invitation link
    liaotian channel join NAME | LINK | ID [--invite TOKEN]   shows the rules
    liaotian channel list                                 your channels, unread counts
    liaotian channel info CH | leave CH
    liaotian channel post CH TEXT | comment CH POST TEXT
    liaotian channel like CH POST [--undo] | pin CH POST [--undo] | delete CH POST [N]
    liaotian channel posts CH [--after P | --before P] [--limit N] [--post P]
    liaotian channel read CH [--pos P]                    unread posts, then marks them read
    liaotian channel search CH WORDS...
    liaotian channel ban CH USER | unban CH USER | role CH USER admin|member
    liaotian channel transfer CH USER | members CH
    liaotian channel update CH [--name N] [--about A] [--rules R] [--open | --closed]
                            [--members-post | --admins-post] [--slow-mode S] [--new-invite]

CH is one of your channels by name; where two of yours share a name, by its number (`12`
or `#12`). An open channel you are not in yet is joined by its name (CHANNEL_FIND; by
number where several share it), a closed one by its invitation link.
Everything a peer chose (names, posts, comments, rules) is printed through
`terminal.safe()`, so it can neither move the cursor nor fake a line of the CLI's own.
"""

from __future__ import annotations

import argparse
from datetime import datetime
from typing import Any, TextIO

from liaotian.protocol.channels import ChannelInfo, ChannelPostEntry

from .channels import invite_link, parse_link
from .client import Client
from .terminal import CONTINUATION, safe

COMMANDS = ("channel",)
ACTIONS = (
    "create",
    "join",
    "leave",
    "info",
    "list",
    "post",
    "comment",
    "like",
    "pin",
    "delete",
    "posts",
    "read",
    "search",
    "ban",
    "unban",
    "role",
    "transfer",
    "members",
    "update",
)


class UsageError(Exception):
    """A wrong combination of arguments (cli.py reports it with exit status 2)."""


def add_parsers(sub: Any, common: list[argparse.ArgumentParser]) -> None:
    c = sub.add_parser("channel", parents=common, help="forum channels: create, join, post, ...")
    csub = c.add_subparsers(dest="channel_command", metavar="ACTION", required=True)

    def action(name: str, help: str, *, channel: bool = True) -> argparse.ArgumentParser:
        p: argparse.ArgumentParser = csub.add_parser(name, parents=common, help=help)
        if channel:
            p.add_argument("channel", metavar="CH", help="your channel's name, or its number")
        return p

    p = action("create", "create a channel you own", channel=False)
    p.add_argument("name", metavar="NAME")
    p.add_argument("--about", default="", help="what the channel is about")
    p.add_argument("--rules", default="", help="rules shown to whoever joins")
    p.add_argument("--closed", action="store_true", help="join only with the invitation")
    p.add_argument("--members-post", action="store_true", help="members post too")
    p.add_argument("--slow-mode", type=int, default=0, metavar="S", help="seconds between posts")
    p = action("join", "join a channel by its name, link or number", channel=False)
    p.add_argument("channel", metavar="NAME|LINK|ID")
    p.add_argument("--invite", default="", metavar="TOKEN", help="the invitation token")
    action("leave", "leave a channel")
    action("info", "a channel's settings, members and pins")
    action("list", "your channels with unread counts", channel=False)
    p = action("post", "post to a channel")
    p.add_argument("text", metavar="TEXT")
    p = action("comment", "comment under a post")
    p.add_argument("post", type=int, metavar="POST")
    p.add_argument("text", metavar="TEXT")
    for name, what in (("like", "like a post"), ("pin", "pin a post (admins)")):
        p = action(name, what)
        p.add_argument("post", type=int, metavar="POST")
        p.add_argument("--undo", action="store_true", help=f"un{name} it")
    p = action("delete", "delete a post, or its N-th comment")
    p.add_argument("post", type=int, metavar="POST")
    p.add_argument("n", type=int, nargs="?", default=0, metavar="N")
    p = action("posts", "a page of posts, or of a post's comments")
    where = p.add_mutually_exclusive_group()
    where.add_argument("--after", type=int, metavar="P")
    where.add_argument("--before", type=int, metavar="P")
    p.add_argument("--post", type=int, metavar="P", help="the comments under post P")
    p.add_argument("--limit", type=int, metavar="N")
    p = action("read", "show your unread posts and mark them read")
    p.add_argument("--pos", type=int, metavar="P", help="only mark read up to P")
    p = action("search", "posts and comments having every word")
    p.add_argument("words", nargs="+", metavar="WORD")
    for name, what in (("ban", "ban a member"), ("unban", "let a banned user in again")):
        p = action(name, what)
        p.add_argument("who", metavar="USER")  # not "user": that is the global --user
    p = action("role", "make a member an admin, or a member again (owner)")
    p.add_argument("who", metavar="USER")
    p.add_argument("role", choices=("admin", "member"))
    p = action("transfer", "hand the channel to a member (owner); you become an admin")
    p.add_argument("who", metavar="USER")
    action("members", "the members and their roles (admins)")
    p = action("update", "change a channel's settings (admins)")
    p.add_argument("--name")
    p.add_argument("--about")
    p.add_argument("--rules")
    how = p.add_mutually_exclusive_group()
    how.add_argument("--open", dest="open", action="store_const", const=True)
    how.add_argument("--closed", dest="open", action="store_const", const=False)
    who = p.add_mutually_exclusive_group()
    who.add_argument("--members-post", dest="members_post", action="store_const", const=True)
    who.add_argument("--admins-post", dest="members_post", action="store_const", const=False)
    p.add_argument("--slow-mode", type=int, metavar="S")
    p.add_argument("--new-invite", action="store_true", help="replace the invitation link")
    p.add_argument("--no-invite", action="store_true", help="remove the invitation link")


def fmt_time(ts_ms: int) -> str:
    return datetime.fromtimestamp(ts_ms / 1000).strftime("%Y-%m-%d %H:%M:%S")


def fmt_post(p: ChannelPostEntry) -> str:
    """`#3 2024-01-01 12:00:00 alice: text  [2 likes, 1 comment]`, text made safe."""
    if p.deleted:
        return f"#{p.pos} {fmt_time(p.ts)} {safe(p.author)}: (deleted)"
    liked = ", liked" if p.liked else ""
    counts = f"  [{p.likes} likes, {p.comments} comments{liked}]"
    return f"#{p.pos} {fmt_time(p.ts)} {safe(p.author)}: {safe(p.text, CONTINUATION)}{counts}"


def print_info(info: ChannelInfo, out: TextIO) -> None:
    kind = "open" if info.open else "by invitation"
    who = "members post" if info.members_post else "admins post"
    print(f'channel #{info.channel} "{safe(info.name)}" owned by {safe(info.owner)}', file=out)
    print(f"  {info.members} members, {kind}, {who}, you: {info.role}", file=out)
    if info.slow_mode:
        print(f"  slow mode: {info.slow_mode} s", file=out)
    print(f"  posts: {info.pos}, read up to {info.read}", file=out)
    if info.pins:
        print("  pinned: " + ", ".join(f"#{p}" for p in info.pins), file=out)
    if info.about:
        print(f"  about: {safe(info.about, CONTINUATION)}", file=out)
    if info.rules:
        print(f"  rules: {safe(info.rules, CONTINUATION)}", file=out)
    if info.invite:
        print(f"  invite: {invite_link(info.channel, info.invite)}", file=out)


async def run(client: Client, args: argparse.Namespace, out: TextIO) -> int:
    ch = client.channels
    action = args.channel_command
    if action == "create":
        info = await ch.create(
            args.name,
            about=args.about,
            rules=args.rules,
            open=not args.closed,
            members_post=args.members_post,
            slow_mode=args.slow_mode,
        )
        print(f'created channel #{info.channel} "{safe(info.name)}"', file=out)
        print(f"link: {invite_link(info.channel, info.invite if args.closed else None)}", file=out)
        return 0
    if action == "join":
        target = args.channel.removeprefix("#")
        if target.isdigit():
            info = await ch.join(int(target), args.invite)
        elif parse_link(target) is not None:
            info = await ch.join(target, args.invite)
        else:
            found = await ch.find(args.channel)
            if not found:
                raise UsageError(
                    f"no open channel is named {args.channel!r}: join a closed one by its link"
                )
            if len(found) > 1:
                ids = ", ".join(f"#{f.channel} ({f.members} members)" for f in found)
                raise UsageError(
                    f"several open channels are named {args.channel!r}: {ids}; give the number"
                )
            info = await ch.join(found[0].channel, args.invite)
        print(
            f'joined channel #{info.channel} "{safe(info.name)}" ({info.members} members)',
            file=out,
        )
        if info.rules:
            print(f"rules: {safe(info.rules, CONTINUATION)}", file=out)
        return 0
    if action == "list":
        for s in await ch.list():
            unread = f"{s.unread} unread" if s.unread else "read"
            print(f"#{s.channel:<6} {safe(s.name):<24} {unread}", file=out)
        return 0
    if action == "update" and _nothing_to_update(args):
        raise UsageError("channel update: give at least one setting to change")
    cid = await ch.resolve(args.channel)
    await _on(client, cid, args, out)
    return 0


def _nothing_to_update(args: argparse.Namespace) -> bool:
    settings = (args.name, args.about, args.rules, args.open, args.members_post, args.slow_mode)
    return all(v is None for v in settings) and not (args.new_invite or args.no_invite)


async def _on(client: Client, cid: int, args: argparse.Namespace, out: TextIO) -> None:
    """The actions on one of the user's channels."""
    ch = client.channels
    action = args.channel_command
    if action == "info":
        print_info(await ch.info(cid), out)
    elif action == "leave":
        await ch.leave(cid)
        print(f"left channel #{cid}", file=out)
    elif action == "post":
        posted = await ch.post(cid, args.text)
        print(f"posted #{posted.pos} in channel #{cid}", file=out)
    elif action == "comment":
        posted = await ch.comment(cid, args.post, args.text)
        print(f"commented #{posted.pos}.{posted.n} in channel #{cid}", file=out)
    elif action == "like":
        likes = await (ch.unlike if args.undo else ch.like)(cid, args.post)
        print(f"post #{args.post}: {likes} likes", file=out)
    elif action == "pin":
        await ch.pin(cid, args.post, not args.undo)
        print(f"{'unpinned' if args.undo else 'pinned'} post #{args.post}", file=out)
    elif action == "delete":
        await ch.delete(cid, args.post, args.n)
        what = f"comment #{args.post}.{args.n}" if args.n else f"post #{args.post}"
        print(f"deleted {what}", file=out)
    elif action == "posts":
        if args.post is not None:
            page = await ch.comments(cid, args.post, after=args.after or 0, limit=args.limit)
            for c in page.comments:
                text = "(deleted)" if c.deleted else safe(c.text, CONTINUATION)
                print(f"#{args.post}.{c.n} {fmt_time(c.ts)} {safe(c.author)}: {text}", file=out)
        else:
            page = await ch.fetch(cid, after=args.after, before=args.before, limit=args.limit)
            for p in page.posts:
                print(fmt_post(p), file=out)
        if page.more:
            print("...", file=out)
    elif action == "read":
        await _read(client, cid, args.pos, out)
    elif action == "search":
        for h in await ch.search(cid, " ".join(args.words)):
            where = f"#{h.post}.{h.n}" if h.n else f"#{h.post}"
            print(
                f"{where} {fmt_time(h.ts)} {safe(h.author)}: {safe(h.text, CONTINUATION)}",
                file=out,
            )
    elif action in ("ban", "unban"):
        await (ch.ban if action == "ban" else ch.unban)(cid, args.who)
        print(f"{action}ned {safe(args.who)} in channel #{cid}", file=out)
    elif action == "role":
        await ch.set_role(cid, args.who, args.role)
        print(f"{safe(args.who)} is now {args.role} of channel #{cid}", file=out)
    elif action == "transfer":
        await ch.transfer(cid, args.who)
        print(f"{safe(args.who)} now owns channel #{cid}; you are an admin", file=out)
    elif action == "members":
        async for m in ch.members(cid):
            print(f"{safe(m.user):<32} {m.role}", file=out)
    elif action == "update":
        info = await ch.update(
            cid,
            name=args.name,
            about=args.about,
            rules=args.rules,
            open=args.open,
            members_post=args.members_post,
            slow_mode=args.slow_mode,
            new_invite=args.new_invite,
            no_invite=args.no_invite,
        )
        print_info(info, out)


async def _read(client: Client, cid: int, pos: int | None, out: TextIO) -> None:
    """Print the unread posts (or none, with --pos) and move the read position."""
    ch = client.channels
    info = await ch.info(cid)
    if pos is None:
        pos = info.read
        async for p in ch.catch_up(cid, info.read):
            print(fmt_post(p), file=out)
            pos = p.pos
    if pos > info.read:
        await ch.read(cid, pos)
    print(f"channel #{cid} read up to #{max(pos, info.read)}", file=out)
