"""Secrets at rest: Fernet through MultiFernet over ENCRYPTION_KEYS (comma-separated, newest first).

The newest key encrypts; every listed key decrypts, so a new key is put first, `assistant
keys rotate` re-encrypts the stored secrets with it, and only then is the old one dropped.
"""
from __future__ import annotations

from functools import lru_cache

from cryptography.fernet import Fernet, InvalidToken, MultiFernet

from shared.settings import Settings, get_settings


class EncryptionNotConfigured(Exception):
    """No usable ENCRYPTION_KEYS: secrets are refused rather than stored in the clear."""


class DecryptionFailed(Exception):
    """A stored secret that none of the configured keys opens (a key was dropped too early)."""


@lru_cache(maxsize=4)
def _multifernet(keys: tuple[str, ...]) -> MultiFernet:
    if not keys:
        raise EncryptionNotConfigured(
            "ENCRYPTION_KEYS is not set; generate a key with `python -c \"from cryptography.fernet "
            "import Fernet; print(Fernet.generate_key().decode())\"` and set it."
        )
    try:
        return MultiFernet([Fernet(key.encode()) for key in keys])
    except (ValueError, TypeError):
        # The message must not echo the keys.
        raise EncryptionNotConfigured(
            "ENCRYPTION_KEYS holds a value that is not a Fernet key (32 url-safe base64-encoded bytes)."
        ) from None


def configured(settings: Settings | None = None) -> bool:
    """True when secrets can be stored: ENCRYPTION_KEYS holds only valid keys."""
    try:
        _multifernet((settings or get_settings()).encryption_keys)
    except EncryptionNotConfigured:
        return False
    return True


def encrypt(plaintext: str, settings: Settings | None = None) -> str:
    """The Fernet token of `plaintext`, under the newest key."""
    return _multifernet((settings or get_settings()).encryption_keys).encrypt(plaintext.encode()).decode()


def decrypt(token: str, settings: Settings | None = None) -> str:
    """The plaintext of a token made by `encrypt` under any configured key."""
    try:
        return _multifernet((settings or get_settings()).encryption_keys).decrypt(token.encode()).decode()
    except InvalidToken:
        raise DecryptionFailed("A stored secret cannot be decrypted with any key in ENCRYPTION_KEYS.") from None


def rotate(token: str, settings: Settings | None = None) -> str:
    """The same secret, re-encrypted under the newest key."""
    try:
        return _multifernet((settings or get_settings()).encryption_keys).rotate(token.encode()).decode()
    except InvalidToken:
        raise DecryptionFailed("A stored secret cannot be decrypted with any key in ENCRYPTION_KEYS.") from None
