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
        # A bare `<sup>` is a footnote marker only if a footnote body follows it, so its text waits here.
        self._sup_depth = 0
        self._sup_text: list[str] | None = None

    def _start_skipping(self, tag: str) -> None:
        self._skip_tag, self._skip_depth = tag, 1

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_tag is not None:
            if tag == self._skip_tag:
                self._skip_depth += 1
            return
        classes = _classes(attrs)
        if tag in _DROPPED_TAGS or "footnote" in classes or "footnote-marker" in classes:
            if "footnote" in classes:
                self._sup_text = None  # the pending bare <sup> was this footnote's marker
            self._flush_sup()
            self._start_skipping(tag)
            return
        if tag == "i" and _is_commentator_anchor(attrs):
            self._flush_sup()
            self._start_skipping(tag)
            return
        if tag == "sup":
            self._flush_sup()
            self._sup_depth += 1
            self._sup_text = []
            return
        if self._sup_depth == 0:
            self._flush_sup()
        if tag in _BLOCK_TAGS:
            self._emit(" ")

    def handle_startendtag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if self._skip_tag is None and tag in _BLOCK_TAGS:
            self._flush_sup()
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
        if self._sup_depth == 0:
            self._flush_sup()
        if tag in _BLOCK_TAGS:
            self._emit(" ")

    def handle_data(self, data: str) -> None:
        if self._skip_tag is not None:
            return
        if self._sup_depth == 0 and self._sup_text is not None and data.strip():
            self._flush_sup()
        self._emit(data)

    def _emit(self, text: str) -> None:
        if self._sup_text is not None:
            self._sup_text.append(text)
        else:
            self.parts.append(text)

    def _flush_sup(self) -> None:
        if self._sup_text is not None:
            pending, self._sup_text = self._sup_text, None
            self.parts.extend(pending)

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
