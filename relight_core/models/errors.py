"""Errors of the model store, with messages a user can act on."""

REPAIR_HINT = "run `relight models install --force` to download and convert them again"


class ModelError(RuntimeError):
    """A converted model is missing, damaged or stale; the message says how to repair it."""
