"""`esm-validate FILE...`: the pre-commit hook (`.pre-commit-hooks.yaml`, id `esm-validate`).

pre-commit passes the matched files as arguments; `esm validate` takes them as `-f FILE`, so
this is `esm validate -f FILE -f FILE ...`: the same offline checks, messages and exit codes
(0 valid, 1 any error). The files are checked together, so the rules across files (a function
claimed by two files) hold among the files of one run.
"""

from __future__ import annotations

import os
import sys

from .cli import main as esm_main

USAGE = "usage: esm-validate SPEC_FILE...  (esm validate -f SPEC_FILE, for pre-commit)"
HINT = (
    "esm-validate checked every file its `files:` matched; if some are not esm specs, narrow it "
    "in .pre-commit-config.yaml (e.g. `files: ^mappings/`)."
)


def main(argv: list[str] | None = None) -> None:
    files = sys.argv[1:] if argv is None else argv
    if any(arg in ("-h", "--help") for arg in files):
        print(USAGE)
        return
    if not files:
        return  # nothing staged matched: nothing to check
    missing = [path for path in files if not os.path.exists(path)]
    if missing:  # say so in the hook's words, not as the -f option the user never typed
        print(f"esm-validate: no such file: {', '.join(missing)}", file=sys.stderr)
        raise SystemExit(1)
    args = ["validate"]
    for path in files:
        args += ["-f", path]  # as an option's value, a name starting with '-' stays a name
    try:
        esm_main(args)
    except SystemExit as exit_:
        if exit_.code not in (0, None):
            print(HINT, file=sys.stderr)
        raise


if __name__ == "__main__":
    main()
