"""Personal data in free text: find it, mask it. Pure functions, no I/O.

    >>> redact("My card is 4111 1111 1111 1111, mail me at jo@example.com")
    'My card is •••• •••• •••• 1111, mail me at j***@example.com'

`detect(text)` returns `Span`s (start, end, kind, masked form), earliest first, never overlapping.
Kinds (`KINDS`): card (Luhn-valid 13-19 digits with a known issuer prefix), cvv and expiry (next to
card words or right after a card number), iban (ISO 7064 checksum), ssn (US), email, phone
(libphonenumber, valid numbers only), secret (typed passwords, PINs and one-time codes).
Checksums come from python-stdnum, phone numbers from phonenumbers, as elsewhere in the project.

`redact(text, policy)` masks every kind whose policy is "mask" (the default for all);
`scrub(text, policy)` gives the fully masked text plus, when a kind the policy keeps is present,
the text with only the other kinds masked (for encrypted storage). Cards, CVVs and secrets are
always masked: `parse_policy` refuses "keep" for them (PCI DSS: no full PAN or CVV at rest).
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from dataclasses import dataclass

import phonenumbers
from stdnum import iban as _iban
from stdnum import luhn

from handoff.errors import PIIPolicyError

KINDS = ("card", "cvv", "expiry", "iban", "ssn", "email", "phone", "secret")
ALWAYS_MASKED = frozenset({"card", "cvv", "secret"})
ACTIONS = ("mask", "keep")
BULLET = "\u2022"

Policy = Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Span:
    start: int
    end: int
    kind: str
    masked: str


@dataclass(frozen=True, slots=True)
class Scrubbed:
    masked: str  # every kind masked: what Slack, logs, the KB, agents and the database's `text` see
    kept: str | None  # only the "mask" kinds masked; None when no kept kind was found
    kinds: tuple[str, ...]  # the kinds found, sorted, deduplicated


def parse_policy(spec: str) -> dict[str, str]:
    """``"email=keep,phone=keep"`` -> {kind: action} for every kind (unnamed kinds: mask)."""
    policy = dict.fromkeys(KINDS, "mask")
    for part in (p.strip() for p in spec.split(",")):
        if not part:
            continue
        kind, sep, action = (s.strip().lower() for s in part.partition("="))
        if not sep or kind not in KINDS or action not in ACTIONS:
            raise PIIPolicyError(part, f"expected kind=mask|keep with kind one of {', '.join(KINDS)}")
        if action == "keep" and kind in ALWAYS_MASKED:
            raise PIIPolicyError(part, f"{kind} is always masked and never stored")
        policy[kind] = action
    return policy


# ---- masks (also used for addresses shown to agents: handoff.context) ---------------------------


def mask_card(digits: str) -> str:
    return f"{BULLET * 4} {BULLET * 4} {BULLET * 4} {digits[-4:]}"


def mask_phone(address: str) -> str:
    try:
        number = phonenumbers.parse(address, None)
        prefix = f"+{number.country_code}"
        national = phonenumbers.national_significant_number(number)
    except phonenumbers.NumberParseException:
        digits = "".join(c for c in address if c.isdigit())
        prefix, national = ("+" if address.startswith("+") else ""), digits
    if len(national) <= 4:
        return prefix + "*" * len(national)
    return prefix + "*" * (len(national) - 4) + national[-4:]


def mask_email(address: str) -> str:
    local, _, domain = address.partition("@")
    return (local[:1] or "*") + "***@" + domain


# ---- detectors ------------------------------------------------------------------------------------

_CARD_RUN = re.compile(r"(?<![\w.,/+-])\d(?:[ .-]?\d){12,18}(?![\w/]|[.,]\d)")
_CARD_GROUPS = re.compile(
    r"\d{4}([ .-])\d{4}\1\d{4}\1\d{1,7}|\d{4}([ .-])\d{6}\2\d{4,5}|\d{4}([ .-])\d{4}\3\d{4}\3\d{4}\3\d{1,3}"
)
# issuer prefixes: Visa MC Amex Diners JCB Disc. UnionPay Maestro
_ISSUER = re.compile(r"4|5[1-5]|2[2-7]|3[47]|3[0689]|35|6[0245]|5[0678]|8[18]")
_NOT_CARD_BEFORE = re.compile(
    r"(?i)\b(?:order|invoice|ref(?:erence)?|tracking|ticket|case|booking|account|acct|customer|member|"
    r"confirmation|transaction|txn|receipt|serial|sku|id)\s*(?:no\.?|number|id|#)?\s*[:#]?\s*$"
)
_CARD_WORDS = re.compile(
    r"(?i)\b(?:card|visa|master\s?card|amex|american express|discover|credit|debit|cvv2?|cvc2?|pan)\b"
)
_CVV = re.compile(
    r"(?i)\b(?:cvv2?|cvc2?|csc|cvn|security\s+code|card\s+code)\b\s*(?:is|was|:|=|#|no\.?)?\s*(\d{3,4})\b"
)
_EXPIRY = re.compile(
    r"(?i)\b(?:exp(?:\.|iry|ires|ire|iration)?(?:\s+date)?|valid\s+(?:thru|through|until|till))\s*(?:is|on|:|=)?\s*"
    r"((?:0?[1-9]|1[0-2])\s*[/-]\s*(?:20)?\d{2})\b"
)
_AFTER_CARD = re.compile(
    r"[\s,;]*(?:exp\w*\s*)?((?:0[1-9]|1[0-2])\s?/\s?(?:20)?\d{2})"
    r"(?:[\s,;]*(?:cvv2?|cvc2?)?\s*(\d{3,4}))?\b",
    re.I,
)
_IBAN = re.compile(r"(?i)\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]{1,4}){3,8}\b")
_SSN = re.compile(r"(?<![\d-])(?!000|666|9\d\d)(\d{3})([- ])(?!00)(\d{2})\2(?!0000)(\d{4})(?![\d-])")
_SSN_BARE = re.compile(r"(?i)\b(?:ssn|social\s+security(?:\s+(?:number|no\.?|#))?)\s*(?:is|:|#|=)?\s*(\d{9})\b")
_DATE = re.compile(r"\d{1,2}[./ ]\d{1,2}[./ ](?:19|20)\d{2}|(?:19|20)\d{2}[./ -]\d{1,2}[./ -]\d{1,2}")
_EMAIL = re.compile(r"(?i)(?<![\w.+-])[a-z0-9._%+-]+@[a-z0-9-]+(?:\.[a-z0-9-]+)*\.[a-z]{2,}\b")
_SECRET = re.compile(
    r"(?i)\b(?:password|passwort|passcode|passwd|pwd|pass\s?phrase|pin(?:\s?(?:code|number))?|login)"
    r"(?:\s+(?:is|was|=|:)(?:\s+now)?|\s*[:=])\s*[\"'\u201c]?(?![\[\u2022*])"
    r"([^\s\"'\u201d]+?)[\"'\u201d]?(?=[.,;!?]?(?:\s|$))"
)
_CODE = re.compile(
    r"(?i)\b(?:(?:one[- ]time|verification|confirmation|security|login|sign[- ]in|2fa|mfa|auth(?:entication)?|"
    r"sms|access|my|the)\s+(?:pass)?code|otp|passcode|pin)\b(?:\s+(?:is|was))?\s*[:=]?\s*"
    r"([0-9]{4,8}|(?=[A-Za-z]*[0-9])[A-Za-z0-9]{6,8})\b"
)
_CODE_FIRST = re.compile(
    r"(?i)\b([0-9]{4,8})\s+is\s+(?:my|the|your)\s+(?:one[- ]time\s+|verification\s+|login\s+)?(?:code|otp|pin)\b"
)


def _card_spans(text: str) -> list[Span]:
    spans = []
    iban_like = [m.span() for m in _IBAN.finditer(text)]
    for m in _CARD_RUN.finditer(text):
        if any(s < m.start() and m.end() <= e for s, e in iban_like):
            continue  # the digits of an IBAN ("DE89 3704 0044 0532 0130 00"), valid or mistyped
        raw = m.group()
        digits = re.sub(r"\D", "", raw)
        if not (13 <= len(digits) <= 19 and _ISSUER.match(digits) and luhn.is_valid(digits)):
            continue
        grouped = _CARD_GROUPS.fullmatch(raw) is not None
        if "." in raw and not grouped:
            continue  # dots only as a card's own grouping ("4111.1111.1111.1111"), never inside amounts
        if not grouped:  # an unformatted run: an order or account id unless nothing says so
            before = text[max(0, m.start() - 30) : m.start()]
            near = text[max(0, m.start() - 60) : m.end() + 30]
            if _NOT_CARD_BEFORE.search(before) and not _CARD_WORDS.search(near):
                continue
        spans.append(Span(m.start(), m.end(), "card", mask_card(digits)))
    return spans


def _card_detail_spans(text: str, cards: list[Span]) -> list[Span]:
    spans = []
    for card in cards:  # "4111 1111 1111 1111 12/27 123": expiry and CVV right after the number
        m = _AFTER_CARD.match(text, card.end)
        if m:
            spans.append(Span(m.start(1), m.end(1), "expiry", f"{BULLET * 2}/{BULLET * 2}"))
            if m.group(2):
                spans.append(Span(m.start(2), m.end(2), "cvv", BULLET * 3))
    for m in _CVV.finditer(text):
        spans.append(Span(m.start(1), m.end(1), "cvv", BULLET * 3))
    for m in _EXPIRY.finditer(text):
        near = text[max(0, m.start() - 80) : m.end() + 80]
        if cards or _CARD_WORDS.search(near):
            spans.append(Span(m.start(1), m.end(1), "expiry", f"{BULLET * 2}/{BULLET * 2}"))
    return spans


def _iban_spans(text: str) -> list[Span]:
    spans = []
    for m in _IBAN.finditer(text):
        groups = m.group().split(" ")
        while len(groups) >= 1:  # the pattern may have swallowed a following word: shrink until valid
            candidate = " ".join(groups)
            compact = candidate.replace(" ", "").upper()
            if 15 <= len(compact) <= 34 and _iban.is_valid(compact):
                masked = f"{compact[:2]}{BULLET * 2} {BULLET * 4} {compact[-4:]}"
                spans.append(Span(m.start(), m.start() + len(candidate), "iban", masked))
                break
            groups = groups[:-1] if len(groups) > 1 else []
            if len(groups) == 1 and len(groups[0]) < 15:
                break
    return spans


def _ssn_spans(text: str) -> list[Span]:
    spans = [Span(m.start(), m.end(), "ssn", f"{BULLET * 3}-{BULLET * 2}-{m.group(4)}") for m in _SSN.finditer(text)]
    spans += [Span(m.start(1), m.end(1), "ssn", f"{BULLET * 3}-{BULLET * 2}-{m.group(1)[-4:]}")
              for m in _SSN_BARE.finditer(text)]
    return spans


_CURRENCY_AFTER = re.compile(r"(?i)^\s?(?:eur|usd|gbp|cad|aud|chf|jpy|euros?|dollars?|pounds?|bucks)\b")
_CURRENCY_BEFORE = re.compile(r"(?i)(?:[$\u20ac\u00a3\u00a5]|\b(?:eur|usd|gbp|cad|aud|chf|jpy))\s?$")


def _phone_spans(text: str, region: str) -> list[Span]:
    spans = []
    iban_like = [m.span() for m in _IBAN.finditer(text)]  # a mistyped IBAN's digits are not a phone number
    for match in phonenumbers.PhoneNumberMatcher(text, region, leniency=phonenumbers.Leniency.VALID):
        if any(s <= match.start and match.end <= e for s, e in iban_like) or _DATE.fullmatch(match.raw_string):
            continue
        before = text[max(0, match.start - 30) : match.start]
        if _CURRENCY_AFTER.match(text[match.end : match.end + 10]) or _CURRENCY_BEFORE.search(before):
            continue  # "3100000 EUR", "$5551234": an amount, not a number to call
        if _NOT_CARD_BEFORE.search(before) and not re.search(r"(?i)\b(?:phone|call|text|mobile|cell)\b", before):
            continue  # "order #2025550143": an id, not a number to call
        e164 = phonenumbers.format_number(match.number, phonenumbers.PhoneNumberFormat.E164)
        spans.append(Span(match.start, match.end, "phone", mask_phone(e164)))
    return spans


def _secret_spans(text: str) -> list[Span]:
    spans = [Span(m.start(1), m.end(1), "secret", "[secret]") for m in _SECRET.finditer(text)]
    for m in _CODE.finditer(text):
        if not re.search(r"(?i)\b(?:zip|postal|post|promo|discount|coupon|area|error|status|country|gift)\s+$",
                         text[max(0, m.start() - 12) : m.start()]):
            spans.append(Span(m.start(1), m.end(1), "secret", "[code]"))
    spans += [Span(m.start(1), m.end(1), "secret", "[code]") for m in _CODE_FIRST.finditer(text)]
    return spans


def detect(text: str, *, region: str = "US") -> list[Span]:
    """Every piece of personal data in `text`, earliest first, non-overlapping (stronger kinds win)."""
    if not text:
        return []
    cards = _card_spans(text)
    ranked = [  # earlier groups win overlaps: a card is never re-read as a phone number
        cards,
        _card_detail_spans(text, cards),
        _iban_spans(text),
        _email_spans(text),
        _ssn_spans(text),
        _secret_spans(text),
        _phone_spans(text, region),
    ]
    taken: list[Span] = []
    for group in ranked:
        for span in group:
            if span.end > span.start and all(span.end <= t.start or span.start >= t.end for t in taken):
                taken.append(span)
    return sorted(taken, key=lambda s: s.start)


def _email_spans(text: str) -> list[Span]:
    return [Span(m.start(), m.end(), "email", mask_email(m.group())) for m in _EMAIL.finditer(text)]


def _apply(text: str, spans: list[Span]) -> str:
    out, pos = [], 0
    for span in spans:
        out.append(text[pos : span.start])
        out.append(span.masked)
        pos = span.end
    out.append(text[pos:])
    return "".join(out)


def redact(text: str, policy: Policy | None = None, *, region: str = "US") -> str:
    """`text` with every kind the policy masks (default: all) replaced by its mask."""
    spans = detect(text, region=region)
    if policy is not None:
        spans = [s for s in spans if s.kind in ALWAYS_MASKED or policy.get(s.kind, "mask") != "keep"]
    return _apply(text, spans)


def scrub(
    text: str, policy: Policy | None = None, *, region: str = "US", ignore: Collection[str] = ()
) -> Scrubbed:
    """The fully masked text, and (only if a kept kind is present) the text with just the masked kinds masked.

    Kinds in `ignore` are left as they are (an agent's reply may give the business's own email address)."""
    spans = [s for s in detect(text, region=region) if s.kind not in ignore]
    kinds = tuple(sorted({s.kind for s in spans}))
    masked = _apply(text, spans)
    policy = policy or {}
    keep = [s for s in spans if s.kind not in ALWAYS_MASKED and policy.get(s.kind, "mask") == "keep"]
    if not keep:
        return Scrubbed(masked, None, kinds)
    return Scrubbed(masked, _apply(text, [s for s in spans if s not in keep]), kinds)
