"""Personal data kept at rest, encrypted: Fernet (AES-128-CBC + HMAC-SHA256) from `cryptography`.

    vault = Vault.from_keys(settings.pii_keys)    # "newest,older,..." (Fernet keys, urlsafe base64)
    token = vault.seal("write to jo@example.com")  # str, safe in a Text column
    vault.open(token)                               # the plain text again
    vault.rotate(token)                             # re-encrypted with the newest key

MultiFernet encrypts with the first key and decrypts with any, so rotation is: put a new key first,
run `switchboard pii rotate` (re-seals every stored value), then remove the old key.
"""

from __future__ import annotations

from cryptography.fernet import Fernet, InvalidToken, MultiFernet


class VaultError(ValueError):
    """A key that is not a Fernet key, or a sealed value no configured key opens."""


def _keys(spec: str) -> list[Fernet]:
    keys = [k.strip() for k in spec.split(",") if k.strip()]
    if not keys:
        raise VaultError("PII_KEYS is empty")
    try:
        return [Fernet(k) for k in keys]
    except (ValueError, TypeError) as exc:
        raise VaultError(
            "PII_KEYS: every key must be 32 url-safe base64-encoded bytes (Fernet.generate_key())"
        ) from exc


def check_keys(spec: str) -> None:
    _keys(spec)


class Vault:
    def __init__(self, fernet: MultiFernet) -> None:
        self._fernet = fernet

    @classmethod
    def from_keys(cls, spec: str) -> Vault:
        return cls(MultiFernet(_keys(spec)))

    def seal(self, text: str) -> str:
        return self._fernet.encrypt(text.encode("utf-8")).decode("ascii")

    def open(self, token: str) -> str:
        try:
            return self._fernet.decrypt(token.encode("ascii")).decode("utf-8")
        except InvalidToken as exc:
            raise VaultError("no key in PII_KEYS opens this value (was its key removed too early?)") from exc

    def rotate(self, token: str) -> str:
        try:
            return self._fernet.rotate(token.encode("ascii")).decode("ascii")
        except InvalidToken as exc:
            raise VaultError("no key in PII_KEYS opens this value") from exc
