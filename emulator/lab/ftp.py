"""An instance's ftp service: pyftpdlib's own server (`python -m pyftpdlib`), anonymous and
read-only, sharing a directory the lab fills under the state directory.

AWS has no FTP helper: the SG sees the control connection and each data connection as separate
flows. Passive mode (the client connects to a port of `passive_ports`) needs that range in the
server's inbound rules; active mode (the server connects back to a port the client names in PORT)
needs an inbound rule on the client's side.
"""
from __future__ import annotations

import sys
from pathlib import Path

from emulator.model import Instance, Service

BANNER = "{name} ftp ready (anonymous, read-only)"
README = """These files are shared by {name}, an instance of an sgemu lab, with pyftpdlib.
Anonymous and read-only: `curl ftp://{name}/` lists this directory, `curl ftp://{name}/pub/hello.txt`
fetches a file (passive mode; add `-P -` for active mode).
"""


def share(directory: Path, instance: Instance) -> None:
    """The files an ftp service offers: README.txt and pub/hello.txt."""
    (directory / "pub").mkdir(parents=True, exist_ok=True)
    (directory / "README.txt").write_text(README.format(name=instance.name))
    (directory / "pub" / "hello.txt").write_text(f"hello from {instance.name}\n")


def spawn_argv(instance: Instance, service: Service, directory: Path) -> list[str]:
    """pyftpdlib on the service's port, IPv4 and IPv6 when the instance has IPv6."""
    share(directory, instance)
    passive = service.passive_ports
    return [sys.executable, "-m", "pyftpdlib", "--interface", "::" if instance.ipv6 is not None else "0.0.0.0",
            "--port", str(service.port), "--directory", str(directory),
            *(["--range", f"{passive.low}-{passive.high}"] if passive is not None else []),
            "--banner", BANNER.format(name=instance.name)]
