"""ssh_config patterns: ``*``/``?`` globs, literal brackets, negation, linear time."""

from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paraproxy._pattern import (
    host_line_matches,
    match_hostname,
    match_pattern,
    match_pattern_list,
)


@pytest.mark.parametrize(
    ("text", "pattern", "expected"),
    [
        ("web1", "web?", True),
        ("web12", "web?", False),
        ("web12", "web*", True),
        ("web", "web*", True),
        ("", "*", True),
        ("", "", True),
        ("a", "", False),
        ("web1", "web[12]", False),  # brackets are literal
        ("web[12]", "web[12]", True),
        ("abcabc", "a*c", True),
        ("abcab", "a*c", False),
        ("aXbYc", "a?b?c", True),
        ("axxbxxc", "a*b*c", True),
        ("acb", "a*b*c", False),
        ("mississippi", "*sip*", True),
        ("mississippi", "m*iss*ppi", True),
        ("mississippi", "m*iss*ppx", False),
        ("ab", "a*?b", False),
        ("axb", "a*?b", True),
        ("FOO", "foo", False),  # Host is case-sensitive
        ("a.b", "a?b", True),
    ],
)
def test_match_pattern(text: str, pattern: str, expected: bool) -> None:
    """Only * and ? are wildcards; everything else is literal and case-sensitive."""
    assert match_pattern(text, pattern) is expected


def test_match_pattern_casefold() -> None:
    """Match host compares case-insensitively."""
    assert match_pattern("FOO.example", "foo.*", casefold=True)
    assert match_hostname("Web1.Example.COM", "web?.example.com") == 1


@pytest.mark.parametrize(
    ("text", "patterns", "expected"),
    [
        ("a", "a,b", 1),
        ("c", "a,b", 0),
        ("a", "!a,*", -1),
        ("b", "!a,*", 1),
        ("b", "!a", 0),  # a negation alone never matches
        ("a", "*,!a", -1),
    ],
)
def test_match_pattern_list(text: str, patterns: str, expected: int) -> None:
    """Comma lists: a matching negation wins at once; negations alone never match."""
    assert match_pattern_list(text, patterns) == expected


@pytest.mark.parametrize(
    ("host", "patterns", "expected"),
    [
        ("bar", ["!bar", "*"], None),
        ("baz", ["!bar"], None),  # negation alone never matches
        ("baz", ["!bar", "*"], "*"),
        ("db.internal", ["*.internal", "!db.internal"], None),
        ("app.internal", ["*.internal", "!db.internal"], "*.internal"),
    ],
)
def test_host_line(host: str, patterns: list[str], expected: str | None) -> None:
    """A matching !pattern cancels the whole Host line."""
    assert host_line_matches(host, patterns) == expected


def test_linear_time_on_adversarial_pattern() -> None:
    """libssh CVE-2026-0967's shape finishes quickly (no exponential backtracking)."""
    pattern = "*a" * 40 + "*b"
    text = "a" * 20000
    start = time.monotonic()
    assert not match_pattern(text, pattern)
    assert not match_pattern(text, "?" * 30 + "*" + "?a" * 30 + "*b")
    assert match_pattern(text + "b", "*" + "a*" * 40 + "b")
    assert not match_pattern(text + "b", "*" + "a?*" * 40 + "c*b")
    assert time.monotonic() - start < 2.0


_ALPHABET = "ab*?[]!."


def _oracle(text: str, pattern: str) -> bool:
    """A regex translation where only * and ? are special (the reference semantics)."""
    regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


@settings(max_examples=500, deadline=None)
@given(
    text=st.text(alphabet=_ALPHABET, max_size=12), pattern=st.text(alphabet=_ALPHABET, max_size=8)
)
def test_match_pattern_agrees_with_regex_oracle(text: str, pattern: str) -> None:
    """The segment matcher gives the same answer as a plain regex translation."""
    assert match_pattern(text, pattern) is _oracle(text, pattern)
