"""``k2 serve``: run the REST API."""

from __future__ import annotations

import os
from typing import Annotated

import typer

from k2.cli._context import context
from k2.settings import K2Settings

app = typer.Typer()


def run_server(
    settings: K2Settings,
    *,
    host: str | None = None,
    port: int | None = None,
    workers: int | None = None,
    api_keys: str | None = None,
) -> None:
    """Serve the lake of ``settings`` until interrupted."""
    import uvicorn

    api = settings.api
    # Workers build their app from the environment; hand them the lake (and keys) resolved here.
    os.environ["K2_DATA_DIR"] = str(settings.data_dir.resolve())
    os.environ["K2_PROFILE"] = settings.profile
    os.environ["K2_API_WORKERS"] = str(workers or api.workers)  # each worker takes its share of the caches
    if api_keys is not None:
        os.environ["K2_API_KEYS"] = api_keys
    uvicorn.run(
        "k2.api.app:server_app",
        factory=True,
        host=host or api.host,
        port=port or api.port,
        workers=workers or api.workers,
        log_level=settings.obs.log_level.value.lower(),
    )


@app.command()
def serve(
    ctx: typer.Context,
    host: Annotated[str | None, typer.Option(help="Interface to listen on (K2_API_HOST).")] = None,
    port: Annotated[int | None, typer.Option(help="TCP port (K2_API_PORT).")] = None,
    workers: Annotated[int | None, typer.Option(help="Worker processes (K2_API_WORKERS).")] = None,
) -> None:
    """Serve the lake over HTTP; open /ui for the web console, /docs for the interactive reference."""
    run_server(context(ctx).settings, host=host, port=port, workers=workers)
