"""Plain text from Sefaria's segment markup: tags, entities, footnotes and invisible marks removed."""

from __future__ import annotations

import unicodedata
from html.parser import HTMLParser

# Tags that separate words when rendered; every other tag is inline (`<big>בְּ</big>רֵאשִׁית` is one word).
_BLOCK_TAGS = frozenset(
    "address article aside blockquote br dd div dl dt figcaption figure footer h1 h2 h3 h4 h5 h6 header hr "
    "li main nav ol p pre section table tbody td tfoot th thead tr ul".split()
)
# Elements dropped with everything inside them.
_DROPPED_TAGS = frozenset(("script", "style", "template", "head", "title"))

_INVISIBLE = {
    cp: None
    for cp in (
        *range(0x200B, 0x2010),  # zero-width space/non-joiner/joiner, LRM, RLM
        *range(0x202A, 0x202F),  # bidi embeddings and overrides
        *range(0x2060, 0x2065),  # word joiner, invisible operators
        *range(0x2066, 0x206A),  # bidi isolates
        0x00AD,  # soft hyphen
        0xFEFF,  # BOM / zero-width no-break space
        0x061C,  # Arabic letter mark
        0x007F,
        *(c for c in range(0x20) if chr(c) not in "\t\n\r\f\v"),
    )
}


def _classes(attrs: list[tuple[str, str | None]]) -> set[str]:
    return {c for name, value in attrs if name == "class" and value for c in value.split()}


def _is_commentator_anchor(attrs: list[tuple[str, str | None]]) -> bool:
    return any(name.startswith("data-commentator") for name, _ in attrs)


class _TextExtractor(HTMLParser):
    """Collects the readable text; footnotes, commentator anchors and scripts are skipped whole."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.parts: list[str] = []
        self._skip_tag: str | None = None
        self._skip_depth = 0
        # A bare `<sup>` is a footnote marker only when a footnote body follows it, so its text
        # (and the whitespace after it) waits here until the next event decides.
        self._sup_depth = 0
        self._sup_marker: list[str] | None = None
        self._sup_tail: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth += 1
            return
        classes = _classes(attrs)
        if "footnote" in classes and self._sup_depth == 0:
            self._drop_sup()
        if (
            tag in _DROPPED_TAGS
            or "footnote" in classes
            or "footnote-marker" in classes
            or (tag == "i" and _is_commentator_anchor(attrs))
        ):
            self._flush_sup()
            self._skip_tag, self._skip_depth = tag, 1
            return
        if tag == "sup":
            if self._sup_depth == 0:
                self._flush_sup()
                self._sup_marker = []
            self._sup_depth += 1
            return
        self._flush_sup()
        if tag in _BLOCK_TAGS:
            self._emit(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_tag is None:
            self._flush_sup()
            if tag in _BLOCK_TAGS:
                self._emit(" ")

    def handle_endtag(self, tag: str) -> None:
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth -= 1
                if self._skip_depth == 0:
                    self._skip_tag = None
            return
        if tag == "sup" and self._sup_depth:
            self._sup_depth -= 1
            return
        self._flush_sup()
        if tag in _BLOCK_TAGS:
            self._emit(" ")

    def handle_data(self, data: str) -> None:
        if self._skip_tag is not None:
            return
        if self._sup_marker is not None:
            if self._sup_depth:
                self._sup_marker.append(data)
                return
            if not data.strip():
                self._sup_tail.append(data)
                return
            self._flush_sup()
        self.parts.append(data)

    def _emit(self, text: str) -> None:
        if self._sup_depth and self._sup_marker is not None:
            self._sup_marker.append(text)
        else:
            self.parts.append(text)

    def _flush_sup(self) -> None:
        """The pending `<sup>` was not a footnote marker: keep its text."""
        if self._sup_marker is not None and self._sup_depth == 0:
            self.parts.extend(self._sup_marker)
            self.parts.extend(self._sup_tail)
            self._sup_marker, self._sup_tail = None, []

    def _drop_sup(self) -> None:
        """The pending `<sup>` marks the footnote that starts now: drop it, keep the spacing after it."""
        if self._sup_marker is not None:
            self.parts.extend(self._sup_tail)
            self._sup_marker, self._sup_tail = None, []

    def text(self) -> str:
        self.close()
        self._sup_depth = 0
        self._flush_sup()
        return "".join(self.parts)


def strip_invisible(text: str) -> str:
    """Drop zero-width, bidi and soft-hyphen marks, NFC-normalise and collapse whitespace to single spaces."""
    return " ".join(unicodedata.normalize("NFC", text.translate(_INVISIBLE)).split())


def clean_text(raw: str) -> str:
    """The readable text of one segment as received from Sefaria (HTML markup and entities allowed)."""
    if "<" not in raw and "&" not in raw:
        return strip_invisible(raw)
    parser = _TextExtractor()
    parser.feed(raw)
    return strip_invisible(parser.text())
