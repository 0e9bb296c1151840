"""K2 processes register their metrics endpoint for the platform's Prometheus as file_sd files."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from k2.errors import InvalidInputError
from k2.obs.discovery import prune, registered, targets_dir
from k2.settings import K2Settings, PlatformSettings, Profile


@pytest.fixture
def settings(tmp_path: Path) -> K2Settings:
    """Platform-profile settings with the platform's data in a folder of the test's own."""
    platform = PlatformSettings(data=tmp_path / "platform")
    return K2Settings(profile=Profile.PLATFORM, data_dir=tmp_path / "lake", platform=platform)


def test_targets_live_under_the_platforms_prometheus_folder(settings: K2Settings) -> None:
    """The discovery folder is <platform data>/prometheus/targets."""
    assert targets_dir(settings) == settings.platform_data / "prometheus" / "targets"


def test_a_registration_is_one_file_sd_file_while_the_block_runs(settings: K2Settings) -> None:
    """Inside the block the file names this process's job, pid and port and holds the loopback
    target with the job and the caller's labels; after the block it is gone.
    """
    with registered(settings, "sink", 9400, {"exchange_group": "asx"}) as path:
        assert path == targets_dir(settings) / f"sink-{os.getpid()}-9400.json"
        assert json.loads(path.read_text()) == [
            {
                "targets": ["127.0.0.1:9400"],
                "labels": {"job": "sink", "exchange_group": "asx"},
            }
        ]
        assert [p.name for p in targets_dir(settings).iterdir()] == [path.name]  # no temporary left
    assert not path.exists()


def test_a_registration_is_removed_when_the_block_fails(settings: K2Settings) -> None:
    """An exception leaving the block still removes the file."""

    def fail_while_registered() -> None:
        with registered(settings, "api", 8000):
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        fail_while_registered()
    assert list(targets_dir(settings).iterdir()) == []


def test_the_embedded_profile_registers_nothing(tmp_path: Path) -> None:
    """Without the platform there is no Prometheus: nothing is written."""
    settings = K2Settings(data_dir=tmp_path / "lake", platform=PlatformSettings(data=tmp_path / "platform"))
    with registered(settings, "sink", 9400) as path:
        assert path is None
    assert not targets_dir(settings).exists()


def test_job_names_are_checked(settings: K2Settings) -> None:
    """A job name that would not make a plain file name or label value is refused."""
    with pytest.raises(InvalidInputError), registered(settings, "../sink", 9400):
        pass


def test_prune_removes_only_the_files_of_dead_processes(settings: K2Settings) -> None:
    """A killed process's registration is pruned; a running process's stays."""
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    folder = targets_dir(settings)
    folder.mkdir(parents=True)
    left = folder / f"live-feed-{dead.pid}-9400.json"
    left.write_text("[]")
    with registered(settings, "api", 8000) as alive:
        assert prune(settings) == [left]
        assert alive is not None
        assert alive.exists()
    assert not left.exists()
