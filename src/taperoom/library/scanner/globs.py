"""Include and exclude globs of a library folder (``scan_patterns``, ``exclude_patterns``).

The translation of a glob into a regular expression is wcmatch's
(:func:`wcmatch.glob.translate`, flags ``GLOBSTAR | IGNORECASE | DOTGLOB |
FORCEUNIX``); the compiled expressions are matched with :mod:`re` directly, since
a walk matches every file name against them.

Semantics (those the API has always had):

* ``*`` matches within one path component (names starting with ``.`` too),
  ``?`` one character, ``[...]`` a character class (``[!...]`` negated), ``**``
  any number of components: ``"**/Samples/**"`` matches ``Samples``,
  ``Samples/kick.wav`` and ``a/b/Samples/c/kick.wav``;
* a pattern ending in ``/**`` also matches the folder itself (``"House/**"``
  matches ``House``), so that an excluded folder is not even entered;
* matching ignores letter case; ``\\`` separators are read as ``/`` and a
  leading ``/`` anchors at the library root (it is dropped: relative paths
  have none);
* braces, extended globs (``@(a|b)``) and a leading ``!`` are plain characters.

A file or folder matches a pattern list when its path relative to the library
root or its bare name matches one of the patterns (:func:`matches`).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from wcmatch import glob as wcglob

#: wcmatch flags of the library's globs (see the module docstring).
FLAGS = wcglob.GLOBSTAR | wcglob.IGNORECASE | wcglob.DOTGLOB | wcglob.FORCEUNIX


def _variants(pattern: str) -> list[str]:
    """The normalised pattern, plus its folder form for a trailing ``/**``."""
    pat = pattern.replace("\\", "/").lstrip("/")
    out = [pat]
    if pat.endswith("/**") and len(pat) > 3:
        out.append(pat[:-3])
    return out


def compile_globs(patterns: Iterable[str]) -> re.Pattern[str] | None:
    """Compile glob patterns into one regular expression matching any of them.

    Parameters
    ----------
    patterns : iterable of str
        Globs with ``/`` (or ``\\``) separators; blank ones are ignored.

    Returns
    -------
    re.Pattern or None
        Matches (with ``.match``) a whole relative path or name that one of the
        patterns matches; None when there is no pattern.
    """
    variants = [v for p in patterns if str(p).strip() for v in _variants(str(p))]
    if not variants:
        return None
    regexes, _ = wcglob.translate(variants, flags=FLAGS)
    return re.compile("|".join(f"(?:{r})" for r in regexes))


def glob_to_regex(pattern: str) -> re.Pattern[str]:
    """Compile one glob (see the module docstring for its semantics).

    Raises
    ------
    ValueError
        The pattern is blank.
    """
    compiled = compile_globs([pattern])
    if compiled is None:
        raise ValueError("a glob pattern must not be blank")
    return compiled


def patterns_of(value: Any) -> tuple[re.Pattern[str], ...]:
    """The compiled patterns of a directory row's ``scan_patterns``/``exclude_patterns``
    (a list of globs, one glob, or None): one expression for the whole list."""
    if not value:
        return ()
    if isinstance(value, str):
        value = [value]
    compiled = compile_globs(str(p) for p in value)
    return () if compiled is None else (compiled,)


def matches(patterns: Sequence[re.Pattern[str]], rel: str, name: str) -> bool:
    """Whether the relative path `rel` or the bare `name` matches one of `patterns`."""
    return any(p.match(rel) or p.match(name) for p in patterns)
