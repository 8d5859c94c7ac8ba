"""Personal data at the door: every message a person writes (a customer on any channel, an agent's
reply or note) goes through `Redactor.inbound` before it is stored, so the stored `text` (and what
Slack, the KB, logs, reports and gaps read from it) is masked. Kinds the policy keeps (PII_POLICY)
are stored too, encrypted (`Message.sealed_text`, bot.pii_vault); card numbers, CVVs and typed
secrets never are.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.pii_vault import Vault
from bot.settings import Settings
from handoff.pii import Policy, parse_policy, redact, scrub

AGENT_REPLY_KEEPS = ("email", "phone")


@dataclass(frozen=True, slots=True)
class Redacted:
    text: str  # masked: store and show this
    sealed: str | None  # the original with only the kinds the policy keeps, encrypted; None if none found
    kinds: tuple[str, ...]


class Redactor:
    def __init__(self, *, policy: Policy, region: str = "US", vault: Vault | None = None) -> None:
        self.policy = dict(policy)
        self.region = region
        self.vault = vault

    @classmethod
    def from_settings(cls, settings: Settings) -> Redactor:
        vault = Vault.from_keys(settings.pii_keys) if settings.pii_keys else None
        return cls(policy=parse_policy(settings.pii_policy), region=settings.sms_default_region, vault=vault)

    def inbound(self, text: str, *, author: str = "customer") -> Redacted:
        """`author` "agent": a reply to the customer keeps email addresses and phone numbers (the business's
        own contact details); "note" and "customer": everything is masked."""
        ignore = AGENT_REPLY_KEEPS if author == "agent" else ()
        result = scrub(text, self.policy, region=self.region, ignore=ignore)
        sealed = None
        if result.kept is not None and self.vault is not None:
            sealed = self.vault.seal(result.kept)
        return Redacted(result.masked, sealed, result.kinds)

    def mask(self, text: str) -> str:
        """Everything masked (for text that is shown or logged, never stored as the original)."""
        return redact(text, region=self.region)

    def original(self, text: str, sealed: str | None) -> str:
        """What we hold for the person themselves (GDPR export): the kept kinds opened, if any."""
        if sealed and self.vault is not None:
            return self.vault.open(sealed)
        return text


def door_meta(meta: dict[str, Any], kinds: tuple[str, ...]) -> dict[str, Any]:
    """The channel's meta without a second copy of the sender's number; which kinds were masked."""
    out = dict(meta)
    if isinstance(out.get("sms"), dict):
        out["sms"] = {k: v for k, v in out["sms"].items() if k != "From"}
    if kinds:
        out["pii"] = list(kinds)
    return out
