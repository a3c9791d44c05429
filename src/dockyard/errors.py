"""Errors shared by every layer, each carrying the HTTP status the Engine API answers with.

The daemon and libraries raise these with Docker's own message text (for example
``NotFound("No such container: foo")``); api/ turns them into ``{"message": ...}`` bodies with
the status below, and the CLI prints ``Error response from daemon: <message>``.
"""

from __future__ import annotations


class DockyardError(Exception):
    """Base class. ``status`` is the HTTP status code for the Engine API."""

    status = 500

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class InvalidParameter(DockyardError):
    status = 400


class Unauthorized(DockyardError):
    status = 401


class Forbidden(DockyardError):
    status = 403


class NotFound(DockyardError):
    status = 404


class Conflict(DockyardError):
    status = 409


class NotModified(DockyardError):
    status = 304


class Unavailable(DockyardError):
    status = 503


class SystemError_(DockyardError):  # noqa: N801 - "SystemError" is a builtin
    status = 500
