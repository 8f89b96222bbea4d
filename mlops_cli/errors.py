"""One exception hierarchy for the core; the CLI maps it to one stderr line and an exit code."""

from __future__ import annotations


class MlopsError(Exception):
    """Something the user can act on. ``hint`` says what to do next."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None, details: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint
        self.details = details  # shown above the one-line error (e.g. a service's last log lines)

    def __str__(self) -> str:
        return f"{self.message} ({self.hint})" if self.hint else self.message


class ConfigError(MlopsError):
    """Settings or a configuration file are invalid."""


class SourceError(MlopsError):
    """The data source failed (after retries) or answered something unusable."""


class SourceExhausted(Exception):
    """The data source has served every batch. Not an error: the run ends cleanly."""

    def __init__(self, detail: str = "every batch has been served", server_said: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.server_said = server_said  # the data server's own words (course jargon), kept for logs


class BatchNotFound(SourceError):
    """A batch number the source does not have."""


class SourceWentBack(SourceError):
    """The data API served a batch number older than one already received (it restarted)."""


class SourceChanged(ConfigError):
    """The data DB holds a dataset from another source than the configured one."""


class MalformedBatchError(MlopsError):
    """A batch that cannot be stored (wrong types, missing required columns)."""


class StorageError(MlopsError):
    """The data DB cannot be reached or written."""


class ConnectionDropped(StorageError):
    """The data DB's connection dropped during a step (nothing of the step was kept)."""


class LockHeld(MlopsError):
    """Another process is writing the same data DB."""


class LockLost(MlopsError):
    """This process's writer lock was lost (its connection dropped): it must not write on."""


class RegistryError(MlopsError):
    """MLflow tracking/registry problems (callers branch on the subclasses)."""


class RegistryUnavailable(RegistryError):
    """MLflow (its server, or its backend database) cannot be reached."""


class VersionNotFound(RegistryError):
    """No such registered model, version or alias."""


class ModelNotLoadable(RegistryError):
    """A registered version exists but cannot be loaded (its flavour, its artifacts)."""


class ModelRefused(ModelNotLoadable):
    """A registered version the inference API will not load: not signed by mlops training, or not
    in the safe sklearn flavour."""


class PromotionRefused(MlopsError):
    """A manual promotion that would make the champion worse, without --force."""


class StackError(MlopsError):
    """A local service could not start, or the stack state is unusable."""


class DiskFull(StorageError):
    """The disk under the data DB, MLflow's files or MLOPS_HOME has no room left."""


SQLITE_FULL = 13  # sqlite3's result code for "database or disk is full"
# the write-ahead log's shared-memory file could not be enlarged: SQLite's own docs say the
# volume may be out of space (a full disk answers it to every connection of a WAL database)
SQLITE_IOERR_SHMSIZE = 4874
POSTGRES_DISK_FULL = "53100"


def is_disk_full(exc: BaseException) -> bool:
    """Whether a failure comes from a full disk, anywhere in its chain of causes (by error code:
    ENOSPC, SQLite's SQLITE_FULL or IOERR_SHMSIZE, PostgreSQL's disk_full), whichever library
    wrapped it."""
    import errno

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno == errno.ENOSPC:
            return True
        if getattr(current, "sqlite_errorcode", None) in (SQLITE_FULL, SQLITE_IOERR_SHMSIZE):
            return True
        if getattr(current, "sqlstate", None) == POSTGRES_DISK_FULL:
            return True
        current = current.__cause__ or current.__context__
    return False


def disk_full(folder: object, kept: str) -> DiskFull:
    """One line for a full disk: which folder's disk, how much is free, what was kept."""
    import shutil
    from pathlib import Path

    path = Path(str(folder))
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        free = f"{shutil.disk_usage(path).free / 1e6:,.1f} MB free"
    except OSError:
        free = "free space unknown"
    return DiskFull(
        f"the disk holding {folder} is full ({free}): {kept}",
        hint="free some space, then run the same command again: it resumes where this one stopped",
    )
