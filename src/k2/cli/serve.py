"""``k2 serve``: run the REST API."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from k2.cli._context import context

app = typer.Typer()


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (K2_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (K2_API_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (K2_API_WORKERS).")] = None,
) -> None:
    """Serve the lake over HTTP; open /docs for the interactive reference."""
    import uvicorn

    settings = context(ctx).settings
    api = settings.api
    # Workers build their app from the environment; hand them the lake this command resolved.
    os.environ["K2_DATA_DIR"] = str(settings.data_dir.resolve())
    uvicorn.run(
        "k2.api.app:create_app",
        factory=True,
        host=host or api.host,
        port=port or api.port,
        workers=workers or api.workers,
        log_level=settings.obs.log_level.value.lower(),
    )
