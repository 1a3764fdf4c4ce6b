"""Telling FITS catalogues from FITS images by their first header bytes.

A FITS file starts with 2880-byte blocks of 80-character ``KEY = value`` cards.
The catalogue loader takes files whose primary HDU holds no data and whose
first extension is a table; the image loader takes files whose primary HDU, or
first extension, is an image. Only the first bytes of the file are read.
"""

from __future__ import annotations

FITS_SIGNATURE = b"SIMPLE  ="
BLOCK = 2880
CARD = 80


def _header_cards(data: bytes, start: int) -> tuple[dict[str, str], int] | None:
    """Cards of the header starting at ``start`` and the offset where its data begins."""
    cards: dict[str, str] = {}
    position = start
    while position + CARD <= len(data):
        card = data[position:position + CARD].decode("ascii", errors="replace")
        position += CARD
        key = card[:8].strip()
        if key == "END":
            return cards, start + -(-(position - start) // BLOCK) * BLOCK
        if card[8:10] == "= ":
            cards.setdefault(key, card[10:].split("/", 1)[0].strip().strip("'").strip())
    return None


def _data_size(cards: dict[str, str]) -> int | None:
    try:
        axes = [int(cards.get(f"NAXIS{i}", "0")) for i in range(1, int(cards.get("NAXIS", "0")) + 1)]
        bits = abs(int(cards.get("BITPIX", "8")))
        size = 0
        if axes:
            size = bits // 8 * int(cards.get("GCOUNT", "1")) * (int(cards.get("PCOUNT", "0"))
                                                                + _product(axes))
        return -(-size // BLOCK) * BLOCK
    except ValueError:
        return None


def _product(values) -> int:
    result = 1
    for value in values:
        result *= value
    return result


def fits_layout(head: bytes) -> tuple[str, str] | None:
    """What the first two HDUs hold, from a FITS file's first bytes, or None if it is not FITS.

    Returns ``(primary, first_extension)``: ``primary`` is ``"image"`` when the
    primary HDU has at least two axes, ``"empty"`` otherwise; ``first_extension``
    is its ``XTENSION`` (``"BINTABLE"``, ``"TABLE"``, ``"IMAGE"``) or ``""`` when
    there is none within ``head``.
    """
    if not head.startswith(FITS_SIGNATURE):
        return None
    primary = _header_cards(head, 0)
    if primary is None:
        return None
    cards, data_start = primary
    try:
        naxis = int(cards.get("NAXIS", "0"))
    except ValueError:
        return None
    kind = "image" if naxis >= 2 else "empty"
    size = _data_size(cards)
    extension = ""
    if size is not None:
        following = _header_cards(head, data_start + size)
        if following is not None:
            extension = following[0].get("XTENSION", "")
    return kind, extension


def first_extension_columns(head: bytes) -> list[str]:
    """The column names (``TTYPEn``) of a FITS file's first extension when it is a table, else []."""
    if fits_layout(head) is None:
        return []
    cards, data_start = _header_cards(head, 0)
    size = _data_size(cards)
    following = None if size is None else _header_cards(head, data_start + size)
    if following is None or following[0].get("XTENSION") not in ("BINTABLE", "TABLE"):
        return []
    extension = following[0]
    try:
        n_columns = int(extension.get("TFIELDS", "0"))
    except ValueError:
        return []
    return [extension[f"TTYPE{index}"] for index in range(1, n_columns + 1) if f"TTYPE{index}" in extension]
