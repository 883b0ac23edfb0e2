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


def no_results_folder(path: object) -> ResultsError:
    """The one line for a path given as a results folder that is not a folder."""
    from pathlib import Path

    if Path(str(path)).is_file():
        return ResultsError(
            f"{path}: a file, not a results folder (give the folder that `run` or `study` "
            "wrote, the one holding runs/ or study.json)"
        )
    return ResultsError(f"{path}: no such results folder")


class ResultsWarning(UserWarning):
    """Something about a results folder a user should know: runs left out, stale or missing."""


class BusyError(ClrbenchError):
    """A results folder is locked by another writer (another `run` or `lr-find`)."""


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM: the CLI stops, keeps what is finished and exits 128 + signal."""

    def __init__(self, signum: int, message: str | None = None):
        super().__init__(message or "interrupted")
        self.signum = signum
        self.message = message
