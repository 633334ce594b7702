"""`python -m emulator.guest.hostname NAME CMD [ARG...]`: run CMD under the hostname NAME.

Started through `unshare --uts`, so the name belongs to CMD and its children alone (an instance's
sshd, so that `ssh web hostname` answers `web`), never to the host.
"""
from __future__ import annotations

import os
import socket
import sys


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) < 2:
        print("usage: python -m emulator.guest.hostname NAME CMD [ARG...]", file=sys.stderr)
        return 2
    socket.sethostname(args[0])
    try:
        os.execvp(args[1], args[1:])
    except FileNotFoundError:             # the shell's conventions: 127 not found, 126 not runnable
        print(f"{args[1]}: command not found", file=sys.stderr)
        return 127
    except PermissionError:
        print(f"{args[1]}: permission denied", file=sys.stderr)
        return 126


if __name__ == "__main__":
    sys.exit(main())
