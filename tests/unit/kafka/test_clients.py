"""Every Kafka client K2 makes takes its brokers and security from one place."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from pydantic import SecretStr, ValidationError

from k2.kafka.clients import LIBRDKAFKA_LOG, client_config
from k2.obs.logging import configure_logging
from k2.settings import KafkaSettings, LogLevel, ObsSettings


def test_plain_settings_give_brokers_and_role() -> None:
    """Without security settings a client gets the brokers, its id and its role's settings."""
    settings = KafkaSettings(bootstrap_servers="broker-a:9092,broker-b:9092")
    config = client_config(settings, "k2-sink", {"group.id": "k2-sink", "enable.auto.commit": False})
    assert config == {
        "bootstrap.servers": "broker-a:9092,broker-b:9092",
        "client.id": "k2-sink",
        "security.protocol": "PLAINTEXT",
        "logger": LIBRDKAFKA_LOG,
        "group.id": "k2-sink",
        "enable.auto.commit": False,
    }


def test_sasl_over_tls_reaches_every_client(tmp_path: Path) -> None:
    """SASL credentials and the CA file set once appear in each client's settings."""
    ca = tmp_path / "ca.pem"
    settings = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-512",
        sasl_username="k2",
        sasl_password=SecretStr("s3cret"),
        ssl_ca_location=ca,
    )
    for client_id in ("k2-producer", "k2-admin", "k2-tail-reader"):
        config = client_config(settings, client_id)
        assert config["security.protocol"] == "SASL_SSL"
        assert config["sasl.mechanism"] == "SCRAM-SHA-512"
        assert (config["sasl.username"], config["sasl.password"]) == ("k2", "s3cret")
        assert config["ssl.ca.location"] == str(ca)


def test_sasl_without_credentials_is_refused() -> None:
    """A SASL protocol without mechanism, user and password is a settings error, not a runtime one."""
    with pytest.raises(ValidationError, match="K2_KAFKA_SASL_MECHANISM"):
        KafkaSettings(security_protocol="SASL_PLAINTEXT", sasl_username="k2")


def test_the_password_stays_out_of_the_settings_repr() -> None:
    """The SASL password is a secret: printing the settings does not show it."""
    settings = KafkaSettings(
        security_protocol="SASL_PLAINTEXT",
        sasl_mechanism="PLAIN",
        sasl_username="k2",
        sasl_password=SecretStr("s3cret"),
    )
    assert "s3cret" not in repr(settings)


def test_librdkafka_lines_become_k2_log_events(capsys: pytest.CaptureFixture[str]) -> None:
    """What librdkafka logs reaches K2's structured logs at its level, not stderr as is."""
    configure_logging(ObsSettings(log_level=LogLevel.INFO, log_format="json"))
    LIBRDKAFKA_LOG.warning("%s [%s] %s", "GETPID", "k2-producer#producer-1", "Coordinator load in progress")
    LIBRDKAFKA_LOG.debug("%s [%s] %s", "BGQUEUE", "k2-producer#producer-1", "Purging")
    lines = [orjson.loads(line) for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert len(lines) == 1
    assert (lines[0]["event"], lines[0]["level"]) == ("librdkafka", "warning")
    assert "GETPID" in lines[0]["detail"]
