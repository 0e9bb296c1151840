"""``GET /v1/pipeline`` on a platform of the test session's own: a running sink is reported from
what Prometheus scraped of it (up, consumer lag of its topics, last commit), and with Prometheus
stopped the route still answers, the stream part unavailable with its reason.

The sink runs as ``k2 stream run`` (platform profile): it serves its metrics and registers them in
the private platform's file-based discovery, so that platform's Prometheus scrapes it.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import date
from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client import CollectorRegistry
from pydantic import SecretStr

from k2.api import create_app
from k2.lake.tables import TRADES
from k2.platform.prometheus import Prometheus
from k2.settings import ApiSettings, K2Settings
from k2.testing.processes import environment
from tests.fixtures.supervised_sink import Feed, SupervisedSink, synthetic_rows, topic_of

pytestmark = [pytest.mark.platform, pytest.mark.kafka]

log = logging.getLogger(__name__)

KEY = {"X-API-Key": "test-key"}
#: Discovery refreshes every 5 s and scrapes run every 5 s: a new sink shows within ~15 s.
WAIT_S = 90.0


def _pipeline(client: TestClient) -> dict[str, Any]:
    response = client.get("/v1/pipeline", headers=KEY)
    assert response.status_code == 200, response.text
    data: dict[str, Any] = response.json()["data"]
    return data


def _eventually(
    check: Callable[[], dict[str, Any] | None], what: str, sink: SupervisedSink
) -> dict[str, Any]:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        sink.watch()
        found = check()
        if found is not None:
            return found
        time.sleep(1.0)
    pytest.fail(f"{what}: not within {WAIT_S:.0f} s\n{sink.log_tail()}")


def test_the_pipeline_reports_the_running_sink_and_survives_prometheus_stopping(
    stream_settings: K2Settings, sink: SupervisedSink
) -> None:
    """With a sink running over produced messages, the answer eventually has the sink up, its
    consumer lag on the trades topic and its last commit's age; with Prometheus stopped it is
    still 200, the stream unavailable and the lake answered.
    """
    Feed(stream_settings).produce(synthetic_rows(date(2024, 1, 8), symbols=2, days=1, trades_per_day=100))
    sink.start()
    trades_topic = topic_of(stream_settings, TRADES)
    api = ApiSettings(keys=SecretStr("tester:test-key"), rate_limit="10000/minute")
    app = create_app(stream_settings.model_copy(update={"api": api}), registry=CollectorRegistry())
    with TestClient(app) as client:

        def sink_reported() -> dict[str, Any] | None:
            data = _pipeline(client)
            found = (data["stream"] or {}).get("sink") or {}
            lags = {lag["topic"] for lag in found.get("consumer_lag", [])}
            if found.get("up") and trades_topic in lags and found.get("last_commit_age_s") is not None:
                return data
            return None

        data = _eventually(sink_reported, "the sink reported up, with its lag and last commit", sink)
        log.info("the pipeline with a sink running: %s", orjson.dumps(data).decode())
        assert data["profile"] == "platform"
        assert (data["stream_status"], data["stream_reason"]) == ("ok", None)
        stream = data["stream"]
        assert stream["prometheus_url"] == f"http://127.0.0.1:{stream_settings.platform.prometheus_port}"
        found = stream["sink"]
        assert found["instances_up"] >= 1
        assert found["last_commit_age_s"] >= 0
        assert set(found["commit_age_s"]) >= {"trades"}
        assert found["breakers"]["catalog"] == "closed"
        assert data["lake"][0]["table"] == "trades"
        assert data["lake"][0]["exists"] is True
        _the_command_line_reports_the_sink_too(stream_settings)

        prometheus = Prometheus(stream_settings)
        prometheus.stop()
        try:
            began = time.monotonic()
            data = _pipeline(client)
            assert time.monotonic() - began < 10
            log.info("the pipeline with Prometheus stopped: %s", orjson.dumps(data).decode())
        finally:
            prometheus.start()
    assert data["stream"] is None
    assert data["stream_status"] == "unavailable"
    assert data["stream_reason"].startswith(f"Prometheus at {stream['prometheus_url']} ")
    assert data["lake_status"] == "ok"
    assert data["lake"][0]["exists"] is True
    assert sink.stop() == 0


def _the_command_line_reports_the_sink_too(settings: K2Settings) -> None:
    """``k2 query pipeline`` under the same settings asks the same Prometheus: the sink is up."""
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("K2_")}, **environment(settings)}

    def k2(*args: str) -> str:
        done = subprocess.run(
            [sys.executable, "-m", "k2.cli.main", "query", "pipeline", *args],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        return done.stdout

    answer = orjson.loads(k2("--format", "json"))
    assert (answer["api"], answer["stream_status"], answer["stream"]["sink"]["up"]) == (None, "ok", True)
    text = k2()
    assert "sink consumer lag" in text
    log.info("k2 query pipeline:\n%s", text)
