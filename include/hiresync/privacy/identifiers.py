"""Chinese personal identifiers: resident ID numbers, mobile numbers, emails.

Pure functions, no I/O. They answer "is this well-formed?" and "what is its canonical form?";
encryption and masking live in ``hiresync.privacy.pii``.
"""

from __future__ import annotations

import re
import unicodedata
from datetime import date

# GB 11643-1999 (ISO 7064 MOD 11-2)
_ID_WEIGHTS = (7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2)
_ID_CHECK_CHARS = "10X98765432"
_ID_SHAPE = re.compile(r"^\d{17}[\dX]$")
_MOBILE = re.compile(r"^1[3-9]\d{9}$")
# Deliberately simple: one @, a dot in the domain, no spaces. Full RFC 5322 is not what HR needs.
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_MOBILE_SEPARATORS = re.compile(r"[\s\-()]")


def id_check_char(first17: str) -> str:
    if len(first17) == 17 and first17.isascii() and first17.isdigit():
        # The weights are 2**(18-i) mod 11 and 13 = 2 (mod 11), so the weighted sum is, mod 11,
        # twice the digits read in base 13: one int() instead of 17 (this runs several times per
        # record: raw suite, mapping, canonical suite, delivery).
        return _ID_CHECK_CHARS[2 * int(first17, 13) % 11]
    total = sum(int(d) * w for d, w in zip(first17, _ID_WEIGHTS))
    return _ID_CHECK_CHARS[total % 11]


def normalize_national_id(value: str) -> str:
    # NFKC: vendors and spreadsheets send full-width digits (１１０１…) now and then; people type
    # the number in groups ("110105 19491231 002X"), so every whitespace character goes.
    return "".join(unicodedata.normalize("NFKC", value).split()).upper()


def national_id_problem(value: str) -> str | None:
    """None when valid, else the rule it breaks: ID_FORMAT, ID_BIRTH_DATE or ID_CHECKSUM."""
    v = normalize_national_id(value)
    if not _ID_SHAPE.match(v):
        return "ID_FORMAT"
    if birth_date_from_id(v) is None:
        return "ID_BIRTH_DATE"
    if id_check_char(v[:17]) != v[17]:
        return "ID_CHECKSUM"
    return None


def birth_date_from_id(value: str) -> date | None:
    try:
        return date(int(value[6:10]), int(value[10:12]), int(value[12:14]))
    except ValueError:
        return None


def age_on(national_id: str, day: date) -> int | None:
    """Whole years of age on `day` by the birth date the ID number carries."""
    born = birth_date_from_id(national_id)
    if born is None:
        return None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def normalize_mobile(value: str) -> str | None:
    """E.164 form (+86...) of a mainland mobile number, or None when it is not one."""
    v = _MOBILE_SEPARATORS.sub("", unicodedata.normalize("NFKC", str(value)))
    if v.startswith("+86"):
        v = v[3:]
    elif v.startswith("0086"):
        v = v[4:]
    return "+86" + v if _MOBILE.match(v) else None


def normalize_email(value: str) -> str | None:
    v = unicodedata.normalize("NFKC", str(value)).strip().lower()
    return v if _EMAIL.match(v) else None
