"""The configurations K2 writes for the platform's Prometheus and Alertmanager."""

from __future__ import annotations

from pathlib import Path

from k2.obs.discovery import targets_dir
from k2.platform.prometheus import ALERTMANAGER, PROMETHEUS, alertmanager_config, prometheus_config
from k2.settings import K2Settings, PlatformSettings, Profile


def _settings(tmp_path: Path) -> K2Settings:
    platform = PlatformSettings(data=tmp_path / "platform", prometheus_port=19090, alertmanager_port=19095)
    return K2Settings(profile=Profile.PLATFORM, data_dir=tmp_path / "lake", platform=platform)


def _jobs(config: dict[str, object]) -> dict[str, dict[str, object]]:
    scrapes = config["scrape_configs"]
    assert isinstance(scrapes, list)
    return {scrape["job_name"]: scrape for scrape in scrapes}


def test_prometheus_discovers_k2_processes_in_the_targets_folder(tmp_path: Path) -> None:
    """The k2 job reads every JSON file of the platform's targets folder, refreshed every 5 s."""
    settings = _settings(tmp_path)
    k2 = _jobs(prometheus_config(settings, []))["k2"]
    assert k2["file_sd_configs"] == [{"files": [f"{targets_dir(settings)}/*.json"], "refresh_interval": "5s"}]


def test_prometheus_scrapes_the_platform_and_alerts_its_alertmanager(tmp_path: Path) -> None:
    """Prometheus scrapes itself, Alertmanager and MinIO on their loopback ports, every 5 s, and
    sends alerts to the platform's Alertmanager.
    """
    config = prometheus_config(_settings(tmp_path), [])
    assert config["global"] == {"scrape_interval": "5s", "evaluation_interval": "5s"}
    jobs = _jobs(config)
    assert jobs["prometheus"]["static_configs"] == [{"targets": ["127.0.0.1:19090"]}]
    assert jobs["alertmanager"]["static_configs"] == [{"targets": ["127.0.0.1:19095"]}]
    assert jobs["minio"]["metrics_path"] == "/minio/v2/metrics/cluster"
    assert config["alerting"] == {"alertmanagers": [{"static_configs": [{"targets": ["127.0.0.1:19095"]}]}]}


def test_rule_files_are_listed_only_when_there_are_some(tmp_path: Path) -> None:
    """Without rule files the configuration has no rule_files section; with some, it names each."""
    settings = _settings(tmp_path)
    assert "rule_files" not in prometheus_config(settings, [])
    rules = [tmp_path / "api.yml", tmp_path / "sink.yml"]
    assert prometheus_config(settings, rules)["rule_files"] == [str(path) for path in rules]


def test_alertmanager_routes_every_alert_to_one_receiver() -> None:
    """One route, to a receiver that notifies nobody (alerts stay visible in its API)."""
    config = alertmanager_config()
    assert config["receivers"] == [{"name": "k2"}]
    route = config["route"]
    assert isinstance(route, dict)
    assert route["receiver"] == "k2"


def test_debian_packages_unpack_into_versioned_folders(tmp_path: Path) -> None:
    """Each package lands in <home>/<package>-<version>, so versions never overwrite each other."""
    assert PROMETHEUS.root(tmp_path) == tmp_path / "prometheus-2.42.0+ds-5+deb12u1"
    assert ALERTMANAGER.root(tmp_path) == tmp_path / "prometheus-alertmanager-0.25.0-1+b4"
    assert not PROMETHEUS.installed(tmp_path)
