"""`sgemu ui`: the live view of a running lab in a browser (root)."""
from __future__ import annotations

import click

from emulator.errors import LabError

from .options import lab_option, live


@click.command()
@lab_option()
@click.option("--port", type=click.IntRange(0, 65535), default=8080, show_default=True,
              help="Port on 127.0.0.1 (0 picks a free one).")
def ui(name: str | None, port: int) -> None:
    """Serve a live view of a running lab on 127.0.0.1 behind a random token (root): its graph with
    flows animated where they are decided, instance details, and explain on a click."""
    from emulator.web.hub import Hub
    from emulator.web.server import UiServer

    lab = live(name)
    hub = Hub(lab)
    hub.start()                  # fails here, with the engine's own message, when the lab cannot be read
    try:
        try:
            server = UiServer(hub, port)
        except OSError as exc:
            raise LabError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror or exc}; choose another --port "
                           "(0 picks a free one)") from None
        click.echo(f"sgemu ui: lab {lab} at {server.url}", nl=True)
        click.echo(f"  open it in a browser on this machine (from elsewhere: ssh -L {server.port}:127.0.0.1:"
                   f"{server.port} this-host); the token is the lab's key, keep it private; Ctrl-C stops")
        try:
            server.serve_forever(poll_interval=0.5)
        except KeyboardInterrupt:
            click.echo("sgemu ui: stopped")
        finally:
            server.server_close()
    finally:
        hub.stop()
