"""Every pipeline parameter checked at once, before anything runs: names, types, ranges, choices.

The command line checks what a user passes to `run`, `submit` and `schedule` against the
compiled pipeline's parameters (`check`); the pipeline's first step, check-parameters, checks
the ranges again (options.require_valid) for runs started any other way (the UI, the API, a
schedule). The rules are
the options' (admod.options). Each problem is one sentence naming the parameter, and all of
them are reported together.
"""

import difflib

from admod import options
from admod.errors import AdmodError

# KFP's parameter types, as the compiled pipeline names them.
INTEGER, NUMBER, STRING, BOOLEAN = "NUMBER_INTEGER", "NUMBER_DOUBLE", "STRING", "BOOLEAN"


def _typed(name: str, value, kind: str):
    """`value` as the type the pipeline declares for `name`, or a sentence saying why not."""
    if kind == BOOLEAN:
        if isinstance(value, bool):
            return value, None
        if str(value).lower() in ("true", "false"):
            return str(value).lower() == "true", None
        return None, f"{name}={value!r} is not true or false."
    if kind in (INTEGER, NUMBER) and isinstance(value, bool):
        return None, f"{name}={value!r} is not a number."
    if kind == INTEGER:
        if isinstance(value, int):
            return value, None
        if isinstance(value, float) and value.is_integer():
            return int(value), None
        if isinstance(value, str) and value.strip().lstrip("-").isdigit():
            return int(value), None
        return None, f"{name}={value!r} is not a whole number."
    if kind == NUMBER:
        try:
            return float(value), None
        except (TypeError, ValueError):
            return None, f"{name}={value!r} is not a number."
    if isinstance(value, (dict, list)):
        return None, f"{name}={value!r} is not a single value."
    return str(value), None


def checked(given: dict, declared: dict[str, tuple[str, object]]) -> dict:
    """`given` checked against the pipeline's `declared` parameters (name -> (type, default or
    None when required)): returns the values typed as the pipeline declares them (an integer
    literal for a float parameter becomes a float). Raises one AdmodError listing every
    unknown name, missing value, wrong type and value out of range."""
    problems, typed, wrong_type = [], {}, set()
    for name, value in given.items():
        if name not in declared:
            close = difflib.get_close_matches(name, declared, n=1)
            hint = (f"did you mean {close[0]}?" if close
                    else "see 'admod run --help' and the README.")
            problems.append(f"'{name}' is not a parameter of the pipeline: {hint}")
            continue
        typed[name], problem = _typed(name, value, declared[name][0])
        if problem:
            problems.append(problem)
            wrong_type.add(name)
    missing = [n for n, (_, default) in declared.items() if default is None and n not in given]
    problems += [f"{name} is missing: pass -p {name}=... ." for name in missing]
    # Ranges too, of every value that has its type, so that one pass reports every problem.
    values = {name: default for name, (_, default) in declared.items() if default is not None}
    values.update({name: value for name, value in typed.items() if name not in wrong_type})
    problems += options.problems(values)
    if problems:
        raise AdmodError("\n".join(problems))
    return typed
