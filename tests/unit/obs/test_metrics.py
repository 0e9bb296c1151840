"""K2's metric catalogue and a process's metrics endpoint."""

from __future__ import annotations

import urllib.request
from pathlib import Path

from prometheus_client import CollectorRegistry

from k2 import __version__
from k2.obs.exposition import exported, process_metrics
from k2.obs.metrics import K2Metrics
from k2.settings import K2Settings, Profile

#: Labels whose values are unbounded (a symbol, a raw path, a user): never on a K2 metric.
UNBOUNDED = {"symbol", "path", "url", "caller", "api_key", "correlation_id", "message_id", "day"}


def test_k2_exports_at_least_fifty_families_with_the_briefs_names_and_bounded_labels() -> None:
    metrics = K2Metrics(CollectorRegistry())
    names = {family.name for family in metrics.registry.collect()}
    assert len(names) >= 50
    assert all(name.startswith("k2_") for name in names)
    for brief in (
        "k2_kafka_messages_produced",
        "k2_sequence_gaps_detected",
        "k2_iceberg_rows_written",
        "k2_iceberg_write_duration_seconds",
        "k2_query_executions",
        "k2_query_duration_seconds",
        "k2_http_requests",
        "k2_http_request_duration_seconds",
        "k2_circuit_breaker_state",
        "k2_degradation_level",
        "k2_kafka_consumer_lag_messages",
    ):
        assert brief in names, brief
    for collector in vars(metrics).values():
        if collector is not metrics.registry:
            # prometheus_client keeps a collector's label names in a private attribute only.
            assert not UNBOUNDED & set(collector._labelnames), collector._name


def test_a_process_reports_its_version_component_memory_and_data_volume(tmp_path: Path) -> None:
    settings = K2Settings(data_dir=tmp_path / "not-made-yet")
    metrics = process_metrics(settings, "sink")
    registry = metrics.registry
    assert registry.get_sample_value("k2_build_info", {"version": __version__, "component": "sink"}) == 1
    assert (registry.get_sample_value("process_resident_memory_bytes") or 0) > 0
    free = registry.get_sample_value("k2_disk_free_bytes", {"volume": "data"})
    capacity = registry.get_sample_value("k2_disk_capacity_bytes", {"volume": "data"})
    assert free is not None
    assert capacity is not None
    assert 0 < free <= capacity


def test_embedded_processes_serve_metrics_only_on_a_port_they_are_given(tmp_path: Path) -> None:
    settings = K2Settings(profile=Profile.EMBEDDED, data_dir=tmp_path)
    metrics = process_metrics(settings, "loader")
    with exported(settings, metrics, "loader", None) as port:
        assert port is None
    metrics.ingest_rows_read.labels("asx").inc(3)
    with exported(settings, metrics, "loader", 0) as port:
        assert port is not None
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as answer:
            text = answer.read().decode()
    assert 'k2_ingest_rows_read_total{source="asx"} 3.0' in text
    assert "process_resident_memory_bytes" in text
