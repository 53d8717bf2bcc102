"""Errors that name the book (and ref) they concern, so one line says what went wrong."""

from __future__ import annotations


class IngestError(Exception):
    """Base error: `book: cause` in one line."""

    def __init__(self, book: str | None, cause: str, *, ref: str | None = None):
        self.book = book
        self.ref = ref
        self.cause = cause
        where = book or ""
        if ref and ref != book:
            where = f"{where} ({ref})" if where else ref
        super().__init__(f"{where}: {cause}" if where else cause)


class UnknownBook(IngestError):
    """The title is not in the catalog / the server does not know it."""


class MalformedResponse(IngestError):
    """The server answered, but not with what the Sefaria API promises."""


class FetchFailed(IngestError):
    """The request kept failing after every retry."""


class BadSchema(IngestError):
    """A book's index schema has a shape we cannot walk."""
