"""Media messages: chunked, resumable, content-addressed uploads and ranged downloads
(SPEC.md section 27).

Declared like the other messages (codec.py). Blob ids and hashes are the 32-byte SHA-256
of the blob's bytes, and chunk data travels as is: both are msgpack bin (`bytes`), the
protocol's only bin fields. The media kinds a SEND may carry are records.py's SendMedia;
the stored message's `media` map is a plain map (SPEC.md 27.5), so a reader accepts kinds
and keys it does not know.
"""

from __future__ import annotations

from typing import Any, ClassVar

from .base import Message, MessageType
from .codec import message, wire
from .frames import frame_head_for_bin
from .records import MEDIA_KINDS

__all__ = [
    "MEDIA_CLASSES",
    "MEDIA_CLIENT_TYPES",
    "MEDIA_KINDS",
    "MEDIA_SERVER_TYPES",
    "SHA256_LEN",
    "BlobData",
    "Download",
    "UploadBegin",
    "UploadCancel",
    "UploadChunk",
    "UploadDone",
    "UploadFinish",
    "UploadStatus",
]

M = MessageType
SHA256_LEN = 32
NO_CAP = None  # bounded by the frame (bin) or by the decoder's max_array_len (arrays)


@message(M.UPLOAD_BEGIN, wire_order=("size", "sha256", "media_type", "name", "chunk_size"))
class UploadBegin(Message):
    """Start an upload, or resume this user's unfinished upload of the same content."""

    size: int  # bytes of the whole blob
    sha256: bytes = wire(min=SHA256_LEN, max=SHA256_LEN)  # of the whole blob
    media_type: str = wire("type", max=127)  # the declared media type, e.g. "image/jpeg"
    chunk_size: int  # a power of two in the server's range (WELCOME limits.media)
    name: str = wire(default="", max=255)  # the file name, shown to recipients of a file


@message(M.UPLOAD_STATUS)
class UploadStatus(Message):
    """The answer to UPLOAD_BEGIN for bytes still to send: which ranges the server holds."""

    upload: int  # the upload's id, for UPLOAD_CHUNK, UPLOAD_FINISH and UPLOAD_CANCEL
    size: int
    chunk_size: int  # the upload's (on a resume, the first BEGIN's)
    held: tuple[int, ...] = wire(max_items=NO_CAP)  # flat [start, end, start, end, ...]
    expires: int  # ms since epoch: the upload expires then unless a chunk arrives


@message(M.UPLOAD_CHUNK)
class UploadChunk(Message):
    """Bytes `[offset, offset + len(data))` of an upload; answered OK once written."""

    upload: int
    offset: int
    data: bytes = wire(max=NO_CAP)

    PARTS: ClassVar[bool] = True

    def encode_parts(self) -> tuple[bytes, ...]:
        """The head, then the chunk's bytes uncopied (what `encode()` would join)."""
        head = frame_head_for_bin(
            int(self.TYPE),
            self.rid,
            {"upload": self.upload, "offset": self.offset},
            "data",
            len(self.data),
        )
        return head, self.data


@message(M.UPLOAD_FINISH)
class UploadFinish(Message):
    """Every byte is sent: verify the SHA-256 and store the blob durably."""

    upload: int


@message(M.UPLOAD_DONE)
class UploadDone(Message):
    """The blob is stored (durable): the answer to UPLOAD_FINISH, or to UPLOAD_BEGIN for
    content this user stored before."""

    blob: bytes = wire(min=SHA256_LEN, max=SHA256_LEN)
    size: int
    media_type: str = wire("type", max=127)  # detected for images and audio, else declared
    info: dict[str, Any] = wire(default_factory=dict)  # what the server read (SPEC.md 27.2)


@message(M.UPLOAD_CANCEL)
class UploadCancel(Message):
    """Give an unfinished upload up: its bytes are dropped; answered OK."""

    upload: int


@message(M.DOWNLOAD)
class Download(Message):
    """Read `length` bytes of a blob from `offset`; answered BLOB_DATA."""

    blob: bytes = wire(min=SHA256_LEN, max=SHA256_LEN)
    offset: int
    length: int


@message(M.BLOB_DATA)
class BlobData(Message):
    """Bytes `[offset, offset + len(data))` of a blob (fewer than asked only at its end)."""

    blob: bytes = wire(min=SHA256_LEN, max=SHA256_LEN)
    offset: int
    size: int  # the blob's
    data: bytes = wire(max=NO_CAP)

    PARTS: ClassVar[bool] = True

    def encode_parts(self) -> tuple[bytes, ...]:
        """The head, then the bytes uncopied (what `encode()` would join)."""
        head = frame_head_for_bin(
            int(self.TYPE),
            self.rid,
            {"blob": self.blob, "offset": self.offset, "size": self.size},
            "data",
            len(self.data),
        )
        return head, self.data


MEDIA_CLASSES: tuple[type[Message], ...] = (
    UploadBegin,
    UploadStatus,
    UploadChunk,
    UploadFinish,
    UploadDone,
    UploadCancel,
    Download,
    BlobData,
)
MEDIA_CLIENT_TYPES = frozenset(int(c.TYPE) for c in MEDIA_CLASSES if c.FROM_CLIENT)
MEDIA_SERVER_TYPES = frozenset(int(c.TYPE) for c in MEDIA_CLASSES if not c.FROM_CLIENT)
