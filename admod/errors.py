"""The one exception type for mistakes a user can fix (a path, a URI, a parameter, the data).

Its message is one sentence naming the input and what to do; the command line and the
components print it without a traceback.
"""


# A step that stops on a user error exits with this status, distinct from a crash (1) and from
# a kill (137): retrying cannot help. (KFP's retry policy cannot tell statuses apart; see the
# README's "Retries".)
USER_ERROR_STATUS = 3


class AdmodError(Exception):
    """A problem with the user's input, explained in one sentence."""


def exit_on_user_error(run, *args, **kwargs):
    """Calls `run`; an AdmodError ends the process with its sentence on stderr and exit status
    USER_ERROR_STATUS."""
    import sys

    try:
        return run(*args, **kwargs)
    except AdmodError as error:
        print(f"admod: {error}", file=sys.stderr)
        sys.exit(USER_ERROR_STATUS)
