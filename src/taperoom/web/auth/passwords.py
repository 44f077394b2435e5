"""Password hashes: Argon2id through argon2-cffi.

The parameters are argon2-cffi's defaults, the second recommended option of
RFC 9106 §4 (Argon2id, t=3 passes, m=64 MiB, p=4 lanes, 16-byte salt, 32-byte
tag); a stored hash that was made with other parameters is replaced at the next
successful sign-in (:func:`needs_rehash`). Only the PHC string
(``$argon2id$v=19$m=65536,t=3,p=4$salt$tag``) is ever stored.
"""

from __future__ import annotations

from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from taperoom.errors import InvalidInput

#: Shortest password accepted (NIST SP 800-63B §5.1.1.2: at least 8 characters).
MIN_PASSWORD_LENGTH = 8
#: Longest password accepted (bounds the work of one hash).
MAX_PASSWORD_LENGTH = 1024
_HASHER = PasswordHasher()


def check_new_password(password: str) -> str:
    """`password` if it may be set.

    Raises
    ------
    InvalidInput
        Shorter than :data:`MIN_PASSWORD_LENGTH` or longer than
        :data:`MAX_PASSWORD_LENGTH` characters.
    """
    if len(password) < MIN_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at least {MIN_PASSWORD_LENGTH} characters")
    if len(password) > MAX_PASSWORD_LENGTH:
        raise InvalidInput(f"the password must have at most {MAX_PASSWORD_LENGTH} characters")
    return password


def hash_password(password: str) -> str:
    """The Argon2id PHC string of `password` (random salt)."""
    return _HASHER.hash(password)


def verify_password(stored: str, password: str) -> bool:
    """True when `password` matches the PHC string `stored` (False for a broken hash)."""
    if len(password) > MAX_PASSWORD_LENGTH:
        return False
    try:
        return bool(_HASHER.verify(stored, password))
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    """True when `stored` was made with other parameters than today's."""
    try:
        return bool(_HASHER.check_needs_rehash(stored))
    except InvalidHashError:
        return True


@lru_cache(maxsize=1)
def _dummy_hash() -> str:
    return _HASHER.hash("taperoom: no such user")


def waste_verification(password: str) -> None:
    """Spend the time of one verification, so that an unknown user name takes as long
    to refuse as a wrong password (no user-name probing by timing)."""
    verify_password(_dummy_hash(), password)
