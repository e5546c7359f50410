"""The message codec as it was before the declarative codec (commit b58cbd1): base.py,
messages.py and social.py copied verbatim, imports of the unchanged modules (codes, errors,
frames, limits) pointed at liaotian.protocol.

A frozen reference for tests/protocol/test_codec_reference.py only, which checks that the
compiled codec encodes every message to the same bytes and accepts and refuses the same
payloads. Do not change it; delete it with that test once nobody needs the comparison.
"""

from .messages import MESSAGE_CLASSES, decode_message
from .social import SOCIAL_CLASSES

__all__ = ["MESSAGE_CLASSES", "SOCIAL_CLASSES", "decode_message"]
