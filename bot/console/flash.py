"""The one-line message a console action leaves for the page it redirects to ("Sent.", "Customer
#7 erased."), carried in the redirect's ``?m=`` and signed, so nobody can put words in the console's
mouth with a crafted link.

    flash = Flash(settings.secret_key)
    return RedirectResponse(flash.url("/console/kb", ok=True, text="Taught."), status_code=303)
    ...
    console.page(request, "kb.html", viewer, flash=flash.read(m))   # None when absent or tampered
"""

from __future__ import annotations

from dataclasses import dataclass

from itsdangerous import BadSignature, URLSafeSerializer


@dataclass(frozen=True, slots=True)
class FlashMessage:
    ok: bool
    text: str


class Flash:
    def __init__(self, secret_key: str) -> None:
        self._signer = URLSafeSerializer(secret_key, salt="switchboard.console.flash")

    def dumps(self, *, ok: bool, text: str) -> str:
        return self._signer.dumps([ok, text])

    def url(self, path: str, *, ok: bool, text: str) -> str:
        return f"{path}?m={self.dumps(ok=ok, text=text)}"  # the signed token is URL-safe

    def read(self, token: str | None) -> FlashMessage | None:
        if not token:
            return None
        try:
            ok, text = self._signer.loads(token)
        except (BadSignature, ValueError, TypeError):
            return None
        return FlashMessage(bool(ok), str(text))


__all__ = ["Flash", "FlashMessage"]
