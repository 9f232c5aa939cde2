"""Errors every layer raises; the CLI and UI show their message as is."""


class LlocoError(Exception):
    """Base class: a problem the user can fix, with a precise message."""


class NotFoundError(LlocoError):
    """An unknown collection, document, model or file."""


class InvalidInputError(LlocoError):
    """A bad argument: empty question, absurd parameter, wrong type."""


class ConflictError(InvalidInputError):
    """Refused for the state things are in, not for the request itself: a name taken, a collection
    with nothing to ask yet (the API's 409)."""


class ModelNotAvailableError(LlocoError):
    """A model whose weights are not installed or not readable here."""


class PermissionDeniedError(LlocoError):
    """The acting user may not do this (an admin-only action, or another user's conversation)."""


class AuthenticationError(LlocoError):
    """A wrong user name or password, an unknown or revoked API key, or a locked account."""
