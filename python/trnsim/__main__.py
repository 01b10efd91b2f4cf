"""``python -m trnsim ARGS``: runs the ``trnsim`` executable installed with this package."""

import os
import shutil
import sys
import sysconfig


def _find_cli() -> str | None:
    scripts = sysconfig.get_path("scripts")
    candidate = os.path.join(scripts, "trnsim")
    if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
        return candidate
    return shutil.which("trnsim")


def main() -> int:
    cli = _find_cli()
    if cli is None:
        print("trnsim: error: the trnsim executable is not installed next to this Python",
              file=sys.stderr)
        return 1
    os.execv(cli, [cli, *sys.argv[1:]])
    return 0  # not reached


if __name__ == "__main__":
    sys.exit(main())
