"""The server's network edge: sockets in, frames out.

transport.py  one asyncio.Protocol per socket over the sans-I/O protocol.Connection
hub.py        who is connected: sessions by id, user and device; outbound budgets
router.py     message type -> handler; exceptions -> ERROR frames
peer.py       what handlers, the hub and the fan-out use of a connection
"""
