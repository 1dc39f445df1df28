"""docs/parameters.md, written from the options: every pipeline parameter with its default, the
values it takes and what it does, in the run form's order (`make docs` writes it; a test keeps
the file equal to what this writes)."""

import dataclasses

from admod import options


def _default(field: dataclasses.Field) -> str:
    if field.default is options.REQUIRED:
        return "required"
    return f"`{field.default!r}`" if isinstance(field.default, str) else f"`{field.default}`"


def _values(field: dataclasses.Field) -> str:
    rule = field.metadata["rule"]
    return "true, false" if field.type is bool else getattr(rule, "text", "")


def markdown() -> str:
    lines = ["# Pipeline parameters", "",
             "Every parameter of the pipeline, as the run form shows it, with its default (the "
             "recipe's value, [method.md](method.md)) and the values it takes. Set one with "
             "`admod run -p NAME=VALUE`, `admod submit -p NAME=VALUE` or `--params-file`; every "
             "value is checked before anything runs, every problem said at once.", "",
             "Written by `make docs` from admod/options.py: edit the options, not this file.", ""]
    seen = set()
    for cls in options.STEP_OPTIONS:
        fields = {name: field for name, field in options.parameter_fields(cls).items()
                  if name not in seen}
        if not fields:
            continue
        seen.update(fields)
        written = cls.__doc__ and not cls.__doc__.startswith(cls.__name__ + "(")  # dataclass's
        summary = cls.__doc__.strip().splitlines()[0] if written else ""
        lines += [f"## {cls.__name__}", "", *([summary, ""] if summary else []),
                  "| parameter | default | values | what it does |", "|---|---|---|---|"]
        lines += [f"| `{name}` | {_default(field)} | {_values(field)} | "
                  f"{field.metadata['description']} |" for name, field in fields.items()]
        lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    print(markdown(), end="")
