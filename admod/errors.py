"""The one exception type for mistakes a user can fix (a path, a URI, a parameter, the data).

Its message is one sentence naming the input and what to do; the command line and the
components print it without a traceback.
"""


class AdmodError(Exception):
    """A problem with the user's input, explained in one sentence."""


def exit_on_user_error(run, *args, **kwargs):
    """Calls `run`; an AdmodError ends the process with its sentence and exit status 1."""
    import sys

    try:
        return run(*args, **kwargs)
    except AdmodError as error:
        sys.exit(f"admod: {error}")
