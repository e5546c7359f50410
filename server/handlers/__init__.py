"""Request handlers, one module per feature: a request in, the chat core and the store,
an answer out. Each class gets its dependencies from the composition root (app.py) and
registers its handlers on the router (`route`); none knows the server or the transport
(connections are net/peer.py's Peer).

    session.py    HELLO, PING
    accounts.py   REGISTER, LOGIN, AUTH, LOGOUT, devices
    messaging.py  SEND, SYNC, ACK, HISTORY
    groups.py     GROUP_*, GET_GROUP, LIST_GROUPS
    contacts.py   contacts, blocking, profiles, privacy
    receipts.py   READ, GET_RECEIPTS, LIST_CONVERSATIONS
    presence.py   presence and typing (ephemeral, never stored)
    bots.py       bot accounts and tokens, commands, button presses, callbacks, edits
    throttle.py   the rate limiters they share
"""
