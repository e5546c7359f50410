"""Full-text search of channel posts and comments: the words both stores match on.

SQLite searches with FTS5 (its `unicode61` tokenizer: runs of letters and digits, case
folded, diacritics removed); the in-memory store splits text the same way here, so a
query finds the same items in both. A query is a list of words, all of which must occur
(no FTS5 syntax reaches the database: every word is quoted).
"""

from __future__ import annotations

import re
import unicodedata

_WORD = re.compile(r"[^\W_]+")
MAX_QUERY_WORDS = 16


def words(text: str) -> list[str]:
    """The words of `text` as the index keeps them: lower case, accents dropped."""
    plain = "".join(
        ch for ch in unicodedata.normalize("NFKD", text.lower()) if not unicodedata.combining(ch)
    )
    return _WORD.findall(plain)


def query_words(query: str) -> list[str]:
    """The distinct words of a query, at most MAX_QUERY_WORDS."""
    return list(dict.fromkeys(words(query)))[:MAX_QUERY_WORDS]


def fts_match(conv: int, terms: list[str]) -> str:
    """The FTS5 MATCH expression: the channel's rows having every term."""
    quoted = " AND ".join(f'"{t}"' for t in terms)
    return f'chan:"c{conv}" AND text:({quoted})'
