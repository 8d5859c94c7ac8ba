"""Precision and recall of `handoff.pii.detect`, per kind, on a generated labelled corpus.

    python bench/pii_corpus.py            # 2000 messages, seed 7, a table
    python bench/pii_corpus.py --json     # the figures as JSON (tests/handoff/test_pii_corpus.py reads them)

Every message is built from a template with its personal data labelled by construction: valid and
invalid card numbers (Luhn, issuer prefixes, every common grouping), CVV/expiry after card words,
IBANs (ISO 7064 check digits computed here) and ones with a wrong check digit, US SSNs, emails, phone
numbers in several regions and formats, typed passwords and one-time codes; and hard negatives that
look like them: order and account ids (Luhn-valid ones included), tracking numbers, dates, times,
amounts, prices, zip/promo/error codes. A detected span counts as a true positive when it overlaps a
labelled value of the same kind; anything else it finds is a false positive.
"""

from __future__ import annotations

import argparse
import json
import random
import string
import sys
from dataclasses import dataclass, field
from pathlib import Path

import phonenumbers
from stdnum import luhn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from handoff.pii import KINDS, detect  # noqa: E402

ISSUERS = ("4", "51", "52", "53", "54", "55", "2221", "2720", "34", "37", "36", "38", "6011", "65", "3528", "62")
PHONE_REGIONS = ("US", "GB", "DE", "FR", "IN", "AU", "BR")


@dataclass
class Sample:
    text: str
    labels: list[tuple[str, int, int]] = field(default_factory=list)  # (kind, start, end)


class Builder:
    """Concatenate pieces, remembering where each labelled value lands."""

    def __init__(self) -> None:
        self.parts: list[str] = []
        self.labels: list[tuple[str, int, int]] = []
        self.pos = 0

    def add(self, text: str, kind: str | None = None) -> Builder:
        if kind:
            self.labels.append((kind, self.pos, self.pos + len(text)))
        self.parts.append(text)
        self.pos += len(text)
        return self

    def done(self) -> Sample:
        return Sample("".join(self.parts), self.labels)


def card_number(rng: random.Random, *, valid: bool = True) -> str:
    prefix = rng.choice(ISSUERS)
    length = 15 if prefix in ("34", "37") else rng.choice((16, 16, 16, 13, 19) if prefix == "4" else (16,))
    body = prefix + "".join(rng.choice(string.digits) for _ in range(length - len(prefix) - 1))
    check = luhn.calc_check_digit(body)
    if not valid:
        check = str((int(check) + rng.randint(1, 9)) % 10)
    return body + check


def group_card(rng: random.Random, digits: str) -> str:
    sep = rng.choice((" ", "-", "", " "))
    if len(digits) == 15 and sep:
        return f"{digits[:4]}{sep}{digits[4:10]}{sep}{digits[10:]}"
    return sep.join(digits[i : i + 4] for i in range(0, len(digits), 4))


def iban(rng: random.Random, *, valid: bool = True) -> str:
    country, bban = rng.choice((
        ("DE", "".join(rng.choice(string.digits) for _ in range(18))),
        ("GB", "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
         + "".join(rng.choice(string.digits) for _ in range(14))),
        ("NL", "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ") for _ in range(4))
         + "".join(rng.choice(string.digits) for _ in range(10))),
    ))
    numeric = "".join(str(int(c, 36)) for c in bban + country + "00")
    check = 98 - int(numeric) % 97
    if not valid:
        check = (check + rng.randint(1, 90)) % 97 or 1
    compact = f"{country}{check:02d}{bban}"
    if rng.random() < 0.6:
        return " ".join(compact[i : i + 4] for i in range(0, len(compact), 4))
    return compact


def phone(rng: random.Random) -> str:
    while True:
        region = rng.choice(PHONE_REGIONS)
        example = phonenumbers.example_number_for_type(region, phonenumbers.PhoneNumberType.MOBILE)
        national = str(example.national_number)
        national = national[:-3] + "".join(rng.choice(string.digits) for _ in range(3))
        number = phonenumbers.parse(f"+{example.country_code}{national}")
        if phonenumbers.is_valid_number(number):
            break
    fmt = rng.choice((phonenumbers.PhoneNumberFormat.E164, phonenumbers.PhoneNumberFormat.INTERNATIONAL,
                      phonenumbers.PhoneNumberFormat.NATIONAL if region == "US" else
                      phonenumbers.PhoneNumberFormat.INTERNATIONAL))
    return phonenumbers.format_number(number, fmt)


def ssn(rng: random.Random) -> str:
    area = rng.choice([a for a in range(1, 900) if a != 666])
    return f"{area:03d}-{rng.randint(1, 99):02d}-{rng.randint(1, 9999):04d}"


def email(rng: random.Random) -> str:
    name = rng.choice(("jo", "maria.lopez", "k_smith", "li+orders", "anna-b", "x9"))
    return f"{name}{rng.randint(1, 999)}@{rng.choice(('example.com', 'mail.example.co.uk', 'shop.example.org'))}"


def password(rng: random.Random) -> str:
    return "".join(rng.choice(string.ascii_letters + string.digits + "!#$%") for _ in range(rng.randint(6, 14)))


def date_text(rng: random.Random) -> str:
    y, m, d = rng.randint(2019, 2027), rng.randint(1, 12), rng.randint(1, 28)
    return rng.choice((f"{y}-{m:02d}-{d:02d}", f"{m}/{d}/{y}", f"{d:02d}.{m:02d}.{y}", f"{d} {m:02d} {y}",
                       f"{y}{m:02d}{d:02d}", f"{m:02d}/{y % 100:02d}"))


def amount_text(rng: random.Random) -> str:
    value = rng.randint(1, 9_999_999) / 100
    return rng.choice((f"${value:,.2f}", f"{value:.2f} EUR", f"\u00a3{value:,.2f}", f"{int(value)} dollars",
                       f"{value:,.2f}".replace(",", " ")))


def order_id(rng: random.Random) -> str:
    kind = rng.random()
    if kind < 0.3:  # a card-shaped, Luhn-valid id written as one run after an order word
        return card_number(rng)
    if kind < 0.6:
        return "".join(rng.choice(string.digits) for _ in range(rng.randint(6, 12)))
    if kind < 0.8:
        return rng.choice(("A", "SO-", "INV-", "#")) + str(rng.randint(10_000, 99_999_999))
    return "1Z" + "".join(rng.choice(string.ascii_uppercase + string.digits) for _ in range(16))


def sample(rng: random.Random) -> Sample:
    b = Builder()
    pick = rng.randrange(14)
    if pick == 0:
        b.add(rng.choice(("My card number is ", "Charged twice on ", "card: ", "use ", ""))).add(
            group_card(rng, card_number(rng)), "card").add(rng.choice((", why?", ".", " thanks", "")))
    elif pick == 1:
        b.add("Visa ").add(group_card(rng, card_number(rng)), "card").add(" exp ").add(
            f"{rng.randint(1, 12):02d}/{rng.randint(25, 31)}", "expiry").add(" cvv ").add(
            str(rng.randint(100, 999)), "cvv")
    elif pick == 2:  # a mistyped card number (Luhn fails) is not a card number
        b.add("is this right: ").add(group_card(rng, card_number(rng, valid=False))).add("?")
    elif pick == 3:
        b.add(rng.choice(("Order ", "order #", "Invoice ", "tracking ", "ref "))).add(order_id(rng)).add(
            rng.choice((" has not arrived", " was charged", "")))
    elif pick == 4:
        b.add(rng.choice(("It arrived on ", "Delivered ", "since "))).add(date_text(rng)).add(
            rng.choice((" at 14:32", "", " around 9am")))
    elif pick == 5:
        b.add(rng.choice(("I paid ", "the price was ", "refund of "))).add(amount_text(rng)).add(
            rng.choice((" for 3 items", "", " on order 55123")))
    elif pick == 6:
        b.add("my IBAN is ").add(iban(rng), "iban").add(rng.choice((" for the refund", "", ".")))
    elif pick == 7:
        b.add("IBAN ").add(iban(rng, valid=False)).add(" (copied wrong?)")
    elif pick == 8:
        b.add(rng.choice(("SSN ", "my social is ", "ssn: "))).add(ssn(rng), "ssn")
    elif pick == 9:
        b.add(rng.choice(("write to ", "email: ", "I'm "))).add(email(rng), "email").add(
            rng.choice((" please", ".", "")))
    elif pick == 10:
        b.add(rng.choice(("call me on ", "my number is ", "text "))).add(phone(rng), "phone").add(
            rng.choice((" after 5", ".", "")))
    elif pick == 11:
        b.add(rng.choice(("my password is ", "Password: ", "pin is "))).add(password(rng), "secret").add(
            rng.choice((" ", ".", "")))
    elif pick == 12:
        code = "".join(rng.choice(string.digits) for _ in range(6))
        if rng.random() < 0.5:
            b.add(rng.choice(("the code is ", "OTP: ", "verification code "))).add(code, "secret")
        else:
            b.add(code, "secret").add(" is my code")
    elif rng.random() < 0.7:
        b.add(rng.choice(("my zip code is ", "promo code ", "error code ", "room ", "item "))).add(
            str(rng.randint(100, 99999))).add(rng.choice((" didn't work", "", " thanks")))
    else:
        b.add(rng.choice(("my code doesnt work", "the otp expired again", "I forgot my password, reset it?",
                          "verification code please", "what is the pin for?", "paid 1.234.567,89 EUR on 3.10.2023")))
    return b.done()


def corpus(n: int, seed: int = 7) -> list[Sample]:
    rng = random.Random(seed)
    return [sample(rng) for _ in range(n)]


def measure(samples: list[Sample]) -> dict[str, dict[str, float]]:
    tp = dict.fromkeys(KINDS, 0)
    fp = dict.fromkeys(KINDS, 0)
    fn = dict.fromkeys(KINDS, 0)
    for s in samples:
        spans = detect(s.text)
        for kind, start, end in s.labels:
            if any(sp.kind == kind and sp.start < end and start < sp.end for sp in spans):
                tp[kind] += 1
            else:
                fn[kind] += 1
        for sp in spans:
            if not any(k == sp.kind and sp.start < e and st < sp.end for k, st, e in s.labels):
                fp[sp.kind] += 1
    out = {}
    for kind in KINDS:
        found, real = tp[kind] + fp[kind], tp[kind] + fn[kind]
        out[kind] = {
            "labelled": real, "tp": tp[kind], "fp": fp[kind], "fn": fn[kind],
            "precision": round(tp[kind] / found, 4) if found else 1.0,
            "recall": round(tp[kind] / real, 4) if real else 1.0,
        }
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    figures = measure(corpus(args.n, args.seed))
    if args.json:
        print(json.dumps(figures, indent=2))
        return
    print(f"{args.n} messages, seed {args.seed}")
    print("| kind | labelled | TP | FP | FN | precision | recall |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for kind, f in figures.items():
        print(f"| {kind} | {f['labelled']} | {f['tp']} | {f['fp']} | {f['fn']} | "
              f"{f['precision']:.3f} | {f['recall']:.3f} |")


if __name__ == "__main__":
    main()
