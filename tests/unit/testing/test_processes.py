"""A ``k2`` process started by the test harness builds the same settings as its starter."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from k2.settings import ApiSettings, K2Settings, Profile
from k2.testing.processes import environment


def test_the_environment_rebuilds_every_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    base = K2Settings(profile=Profile.PLATFORM, data_dir=tmp_path / "lake")
    settings = base.model_copy(
        update={
            "api": ApiSettings(keys=SecretStr("a:b,c:d"), rate_limit="5/second"),
            "kafka": base.kafka.model_copy(update={"topic_prefix": "run-1.", "partitions": 7}),
            "stream": base.stream.model_copy(update={"group_id": "g1", "commit_interval_s": 0.5}),
        }
    )
    for name in [n for n in os.environ if n.startswith("K2_")]:
        monkeypatch.delenv(name)
    for name, value in environment(settings).items():
        monkeypatch.setenv(name, value)
    rebuilt = K2Settings()
    assert rebuilt.model_dump(mode="json", exclude={"api"}) == settings.model_dump(
        mode="json", exclude={"api"}
    )
    assert rebuilt.api.keys is not None
    assert rebuilt.api.keys.get_secret_value() == "a:b,c:d"
    assert rebuilt.api.rate_limit == "5/second"
