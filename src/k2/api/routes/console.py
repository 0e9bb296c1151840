"""The web console at ``/ui``: static assets shipped in the package (``k2/api/console``, built
from ``console/`` by ``make console``) and the venues' clocks the page shows times on.

The page holds no key: it asks for one and calls the ``/v1`` API with it like any client.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles
from starlette.responses import Response
from starlette.types import Scope

from k2.domain.venues import VENUES

PATH = "/ui"

router = APIRouter(prefix=PATH, tags=["console"], include_in_schema=False)


@router.get("")
def console_root() -> RedirectResponse:
    """``/ui`` → ``/ui/``, so the page's relative asset addresses resolve under it."""
    return RedirectResponse(f"{PATH}/")


@router.get("/venues.json")
async def venue_clocks() -> dict[str, dict[str, str]]:
    """Each venue's name and IANA time zone: the console's days and clocks are the venue's.
    Answered on the event loop (no I/O), not behind the reads the page makes beside it.
    """
    return {code: {"name": v.name, "timezone": v.timezone} for code, v in VENUES.items()}


#: The page loads and calls nothing but this server, and runs no inline script: a script
#: injected into it could neither run nor send the key in its session storage elsewhere.
#: (The chart library sets element styles, which ``style-src`` allows inline.)
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; script-src 'self'; connect-src 'self'; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; object-src 'none'; base-uri 'none'; frame-ancestors 'none'"
)


class _ConsoleFiles(StaticFiles):
    """The console's files, each with the page's content security policy."""

    async def get_response(self, path: str, scope: Scope) -> Response:
        response = await super().get_response(path, scope)
        response.headers["Content-Security-Policy"] = CONTENT_SECURITY_POLICY
        return response


def assets() -> StaticFiles:
    """The page, its script and its style, served from the installed package."""
    return _ConsoleFiles(packages=[("k2.api", "console")], html=True)
