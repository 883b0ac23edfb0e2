"""Errors a user can cause: one clear line, exit code 2 from the CLI."""


class ClrbenchError(Exception):
    """Bad input (unknown schedule, nonsense parameter, corrupt file, missing baseline...)."""


class DataError(ClrbenchError):
    """A dataset file is missing, truncated, corrupt or fails its checksum."""


class ScheduleError(ClrbenchError):
    """An unknown schedule name or an invalid schedule parameter."""


class ConfigError(ClrbenchError):
    """An invalid experiment configuration."""


class ResultsError(ClrbenchError):
    """A results folder or baseline file that is missing or cannot be read."""


class ResultsWarning(UserWarning):
    """Something about a results folder a user should know: runs left out, stale or missing."""
