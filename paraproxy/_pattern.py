"""Linear-time ssh_config patterns: ``*`` and ``?`` only, ``[`` ``]`` literal.

OpenSSH's ``match.c`` semantics (``match_pattern``, ``match_pattern_list``,
``match_hostname``) without its old recursive matcher: libssh's
CVE-2026-0967 was exponential backtracking on ``*a*a*a…b``, and OpenSSH 10.4
moved to a state-set matcher.  Here a pattern is split at ``*`` and each
literal segment is placed at its leftmost possible position, which is exact
for ``*``/``?`` globs and never backtracks.
"""

from __future__ import annotations

import functools
import logging
import re
from collections.abc import Sequence

__all__ = ["host_line_matches", "match_hostname", "match_pattern", "match_pattern_list"]

logger = logging.getLogger(__name__)


@functools.lru_cache(maxsize=1024)
def _segment_regex(segment: str) -> re.Pattern[str]:
    """Compile a ``?``-bearing segment into a regex with no quantifiers."""
    return re.compile(".".join(re.escape(part) for part in segment.split("?")), re.DOTALL)


def _equal_at(text: str, pos: int, segment: str) -> bool:
    """Tell whether ``segment`` (``?`` = any one char) matches text at ``pos`` exactly."""
    if pos < 0 or pos + len(segment) > len(text):
        return False
    if "?" not in segment:
        return text.startswith(segment, pos)
    return _segment_regex(segment).match(text, pos, pos + len(segment)) is not None


def _find(text: str, segment: str, start: int, end: int) -> int:
    """Return the leftmost position of ``segment`` inside ``text[start:end]``, or -1."""
    if "?" not in segment:
        return text.find(segment, start, end)
    found = _segment_regex(segment).search(text, start, end)
    return -1 if found is None else found.start()


def match_pattern(text: str, pattern: str, casefold: bool = False) -> bool:
    """Match ``text`` against one glob where only ``*`` and ``?`` are special."""
    if casefold:
        text, pattern = text.lower(), pattern.lower()
    parts = pattern.split("*")
    if len(parts) == 1:
        return len(text) == len(pattern) and _equal_at(text, 0, pattern)
    first, last = parts[0], parts[-1]
    if len(text) < len(first) + len(last):
        return False
    end = len(text) - len(last)
    if not (_equal_at(text, 0, first) and _equal_at(text, end, last)):
        return False
    pos = len(first)
    # Leftmost placement of each middle segment is optimal: any later
    # placement leaves less room for the segments after it.
    for segment in parts[1:-1]:
        if not segment:
            continue
        found = _find(text, segment, pos, end)
        if found < 0:
            return False
        pos = found + len(segment)
    return True


def match_pattern_list(text: str, patterns: str, casefold: bool = False) -> int:
    """Match a comma-separated pattern list: 1 matched, -1 a ``!`` negation matched, 0 none.

    A matching negated sub-pattern wins at once; negations alone never make a
    positive match (``match.c:match_pattern_list``).
    """
    positive = 0
    for sub in patterns.split(","):
        negated = sub.startswith("!")
        if match_pattern(text, sub[1:] if negated else sub, casefold):
            if negated:
                return -1
            positive = 1
    return positive


def match_hostname(host: str, patterns: str) -> int:
    """Match a host name against a pattern list case-insensitively, as ``Match host`` does."""
    return match_pattern_list(host.lower(), patterns, casefold=True)


def host_line_matches(host: str, patterns: Sequence[str]) -> str | None:
    """Apply a ``Host`` line's patterns (case-sensitive): the pattern that matched, or None.

    A matching ``!pattern`` cancels the whole line, whatever else matched.
    """
    matched: str | None = None
    for pattern in patterns:
        negated = pattern.startswith("!")
        body = pattern[1:] if negated else pattern
        if match_pattern(host, body):
            if negated:
                logger.debug("Host line cancelled by negated match for %s", body)
                return None
            if matched is None:
                matched = body
    return matched
