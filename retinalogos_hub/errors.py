"""Typed errors. The library raises these; the CLI turns each into one line plus a next step."""


class RetinalogosError(Exception):
    """Base class. The message must name the bad file/row/field/value and, where there is one, the fix."""

    hint: str | None = None

    def __init__(self, message: str, hint: str | None = None):
        super().__init__(message)
        if hint is not None:
            self.hint = hint


class InputError(RetinalogosError):
    """A file, directory, column or row the user gave is missing or malformed."""


class ConfigError(RetinalogosError):
    """A recipe / YAML mapping has unknown keys, wrong types or inconsistent values."""


class SourceError(RetinalogosError):
    """Unknown source adapter, or a source directory that does not match its layout."""


class OfflineError(RetinalogosError):
    """A model or dataset id is not available locally while the Hub cannot be reached."""

    hint = "pass a local directory instead of a Hub id, or unset HF_HUB_OFFLINE if you have network access"


class HubError(RetinalogosError):
    """The Hub (or an HF_ENDPOINT) is unreachable or refused an operation."""


class LicenseError(RetinalogosError):
    """A source has no licence entry, or an operation would break its licence."""


class TrainingError(RetinalogosError):
    """A run that went through the motions without training: no gradient, an EMA that never moved, weights unchanged,
    or an engine other than the one asked for."""
