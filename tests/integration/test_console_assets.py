"""The web console's files as the API serves them: no key, no CDN, the venues' clocks."""

from collections.abc import Iterator
from html.parser import HTMLParser

import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry

from k2.api import create_app
from k2.testing import EmbeddedLake

pytestmark = pytest.mark.integration


class _Addresses(HTMLParser):
    """Every src and href in a page."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.found += [value for name, value in attrs if name in {"src", "href"} and value]


@pytest.fixture(scope="module")
def client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestClient]:
    lake = EmbeddedLake.create(tmp_path_factory.mktemp("console") / "lake")
    with TestClient(create_app(lake.settings, registry=CollectorRegistry())) as served:
        yield served
    lake.close()


def test_ui_redirects_to_the_page_which_loads_only_its_own_files(client: TestClient) -> None:
    """/ui leads to /ui/, served without a key; every file the page loads comes from the server."""
    redirect = client.get("/ui", follow_redirects=False)
    assert (redirect.status_code, redirect.headers["location"]) == (307, "/ui/")
    page = client.get("/ui/")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    parser = _Addresses()
    parser.feed(page.text)
    assert {"console.js", "console.css"} <= set(parser.found)
    assert not [a for a in parser.found if "//" in a]
    for asset in ("console.js", "console.css"):
        assert client.get(f"/ui/{asset}").status_code == 200


def test_the_page_may_talk_only_to_its_server(client: TestClient) -> None:
    """The content security policy keeps scripts and calls to the page's own server."""
    policy = dict(
        part.strip().split(" ", 1)
        for part in client.get("/ui/").headers["content-security-policy"].split(";")
    )
    assert policy["default-src"] == policy["script-src"] == policy["connect-src"] == "'self'"
    assert policy["frame-ancestors"] == "'none'"


def test_the_script_is_served_as_javascript(client: TestClient) -> None:
    """Browsers run a module script only when it is served with a JavaScript type."""
    served = client.get("/ui/console.js")
    assert served.headers["content-type"].startswith("text/javascript")


def test_venues_clocks_for_the_page(client: TestClient) -> None:
    """The page reads each venue's time zone to show venue-local days and clocks."""
    venues = client.get("/ui/venues.json").json()
    assert venues["ASX"] == {"name": "Australian Securities Exchange", "timezone": "Australia/Sydney"}


def test_a_missing_file_answers_with_the_error_body(client: TestClient) -> None:
    """A wrong address under /ui is a 404 in the API's one error body."""
    missing = client.get("/ui/nothing.js")
    assert missing.status_code == 404
    assert missing.json()["error"]["code"] == "NOT_FOUND"
