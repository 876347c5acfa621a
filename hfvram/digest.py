"""One hash for the cache's checksums and the facts key: BLAKE2b from CPython's builtin `_blake2` module, which
`hashlib` wraps. Importing `hashlib` first loads OpenSSL's `_hashlib` (~4 ms of every warm or offline run, a few
per cent of it); the builtin module gives the same digests (hashlib.blake2b), and hashlib is the fallback where an
interpreter lacks it."""

from __future__ import annotations

try:
    from _blake2 import blake2b
except ImportError:  # another interpreter: hashlib's, whatever backs it
    from hashlib import blake2b


def hexdigest(data: bytes = b"", size: int = 32) -> str:
    """The BLAKE2b digest of `data` (`size` bytes), in hex."""
    return blake2b(data, digest_size=size).hexdigest()


def hasher(size: int = 32):
    """An incremental BLAKE2b (`update`, `hexdigest`)."""
    return blake2b(digest_size=size)
