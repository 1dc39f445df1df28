"""The one exception type for mistakes a user can fix (a path, a URI, a parameter, the data).

Its message is one sentence naming the input and what to do; the command line and the
components print it without a traceback.
"""

import contextlib
import errno
import os
import shutil


# A step that stops on a user error exits with this status, distinct from a crash (1) and from
# a kill (137): retrying cannot help. (KFP's retry policy cannot tell statuses apart; see the
# README's "Retries".)
USER_ERROR_STATUS = 3


class AdmodError(Exception):
    """A problem with the user's input, explained in one sentence."""


class RunFailed(AdmodError):
    """A pipeline run (local or in the cloud) ended failed: the message names it and where its
    log is, which says whether the input or a bug is at fault, so a command that waited for it
    exits 1, not USER_ERROR_STATUS."""


class RunStopped(Exception):
    """A run or command was interrupted (Ctrl-C, SIGTERM); the message says what was kept."""


def google_cloud_errors() -> tuple:
    """What a Google Cloud API call raises when the service, the credentials or the network
    fail (not a bug of ours): the types to turn into one sentence."""
    from google.api_core.exceptions import GoogleAPIError
    from google.auth.exceptions import GoogleAuthError

    return GoogleAPIError, GoogleAuthError, OSError


def brief(error: Exception, limit: int = 300) -> str:
    """An exception's message on one line, cut to `limit` characters, for a sentence."""
    text = getattr(error, "message", None) or str(error) or type(error).__name__
    return " ".join(str(text).split())[:limit]


def disk_full(error: Exception) -> str | None:
    """The sentence for an error that means a full disk (OSError ENOSPC or EDQUOT,
    shutil.Error, SQLite's, TensorFlow's ResourceExhaustedError), or None."""
    import tempfile

    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EDQUOT):
        where = error.filename or "its output folder"
    elif isinstance(error, shutil.Error) and "No space left on device" in str(error):
        where = error.args[0][0][1]  # shutil.Error lists (source, destination, why)
    elif any(words in str(error) for words in FULL_DISK_WORDS):
        where = "its output folder"
    else:
        return None
    scratch = str(where).startswith(tempfile.gettempdir().rstrip("/") + "/")
    return (f"The disk is full: writing '{where}' failed; free space there"
            + (", point TMPDIR at a larger disk," if scratch else "")
            + " or give the step more disk (a larger boot disk, or ephemeral-storage on "
            "Kubernetes).")


FULL_DISK_WORDS = ("No space left on device", "database or disk is full")


@contextlib.contextmanager
def writes_into(*folders: str):
    """A full disk met in this block is named: as the file that failed, where the error says,
    else as the one of `folders` with the least free space (a write's or a close's OSError, and
    SQLite's, name no file)."""
    try:
        yield
    except Exception as error:
        if disk_full(error) is None or getattr(error, "filename", None):
            raise
        raise OSError(errno.ENOSPC, "No space left on device", _fullest(folders)) from error


def _fullest(folders) -> str:
    def free(folder: str) -> int:
        while not os.path.exists(folder) and os.path.dirname(folder) != folder:
            folder = os.path.dirname(folder)
        return shutil.disk_usage(folder).free

    return min(folders, key=free)


def user_error(error: BaseException) -> str | None:
    """The one sentence for an error the user can fix (an AdmodError, a full disk), or None
    for anything else (a bug, which keeps its traceback)."""
    if isinstance(error, AdmodError):
        return str(error)
    return disk_full(error)


def say(message: str) -> None:
    """A user error's sentence on stderr, as every admod command and step prints it."""
    import sys

    print(f"admod: {message}", file=sys.stderr)


def exit_on_user_error(run, *args, **kwargs):
    """Calls `run`; an AdmodError, or a full disk, ends the process with one sentence on stderr
    and exit status USER_ERROR_STATUS."""
    import sys

    try:
        return run(*args, **kwargs)
    except Exception as error:  # noqa: BLE001 - only a user's error is turned into a sentence
        message = user_error(error)
        if message is None:
            raise
    say(message)
    sys.exit(USER_ERROR_STATUS)
