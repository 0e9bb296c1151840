"""The web console at ``/ui``: static assets shipped in the package (``k2/api/console``, built
from ``console/`` by ``make console``) and the venues' clocks the page shows times on.

The page holds no key: it asks for one and calls the ``/v1`` API with it like any client.
"""

from __future__ import annotations

from fastapi import APIRouter
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from k2.domain.venues import VENUES

PATH = "/ui"

router = APIRouter(prefix=PATH, tags=["console"], include_in_schema=False)


@router.get("")
def console_root() -> RedirectResponse:
    """``/ui`` → ``/ui/``, so the page's relative asset addresses resolve under it."""
    return RedirectResponse(f"{PATH}/")


@router.get("/venues.json")
def venue_clocks() -> dict[str, dict[str, str]]:
    """Each venue's name and IANA time zone: the console's days and clocks are the venue's."""
    return {code: {"name": v.name, "timezone": v.timezone} for code, v in VENUES.items()}


def assets() -> StaticFiles:
    """The page, its script and its style, served from the installed package."""
    return StaticFiles(packages=[("k2.api", "console")], html=True)
