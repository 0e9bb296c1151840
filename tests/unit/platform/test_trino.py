"""What K2 tells Trino, and when the platform runs it."""

from __future__ import annotations

from pathlib import Path

from pydantic import SecretStr
from typer.testing import CliRunner

from k2.cli.main import app
from k2.platform import stack
from k2.platform.trino import Trino
from k2.settings import K2Settings, LakeSettings, PlatformSettings, Profile


def _settings(tmp_path: Path, **platform: object) -> K2Settings:
    return K2Settings(
        data_dir=tmp_path / "lake",
        platform=PlatformSettings.model_validate(
            {"data": tmp_path / "platform", "home": tmp_path / "home", "postgres_port": 15433, **platform}
        ),
    )


def test_the_catalog_is_k2s_postgresql_catalog_and_minio_warehouse(tmp_path: Path) -> None:
    """Trino's Iceberg catalog reads the JDBC catalog pyiceberg writes, under its name, and the
    platform's MinIO, whatever profile the command ran under.
    """
    settings = _settings(tmp_path, minio_port=19000).model_copy(
        update={"lake": LakeSettings(catalog_name="desk_a")}
    )
    properties = Trino(settings).catalog_properties()
    assert properties["iceberg.catalog.type"] == "jdbc"
    assert properties["iceberg.jdbc-catalog.connection-url"] == "jdbc:postgresql://127.0.0.1:15433/k2"
    assert properties["iceberg.jdbc-catalog.catalog-name"] == "desk_a"
    assert properties["iceberg.jdbc-catalog.default-warehouse-dir"] == "s3://k2-lake/warehouse"
    assert properties["s3.endpoint"] == "http://127.0.0.1:19000"
    assert properties["s3.aws-secret-key"] == "k2-local-secret"


def test_the_catalog_follows_an_explicit_lake(tmp_path: Path) -> None:
    """A catalog URI and store set explicitly are the ones Trino reads (with the password)."""
    lake = LakeSettings(
        catalog_uri="postgresql+psycopg://reader:pw@db.internal:6543/lakes",
        s3_endpoint="http://store:9000",
        s3_access_key_id="key",
        s3_secret_access_key=SecretStr("secret"),
    )
    settings = _settings(tmp_path).model_copy(update={"lake": lake, "profile": Profile.PLATFORM})
    properties = Trino(settings).catalog_properties()
    assert properties["iceberg.jdbc-catalog.connection-url"] == "jdbc:postgresql://db.internal:6543/lakes"
    assert properties["iceberg.jdbc-catalog.connection-user"] == "reader"
    assert properties["iceberg.jdbc-catalog.connection-password"] == "pw"
    assert (properties["s3.endpoint"], properties["s3.aws-access-key"]) == ("http://store:9000", "key")


def test_trino_is_part_of_the_platform_only_when_asked(tmp_path: Path) -> None:
    """`k2 platform up` leaves Trino out unless K2_PLATFORM_TRINO (or --with trino) asks for it."""
    assert "trino" not in [s.name for s in stack.services(_settings(tmp_path))]
    assert stack.services(_settings(tmp_path, trino=True))[-1].name == "trino"


def test_platform_up_refuses_an_unknown_optional_service(tmp_path: Path) -> None:
    """`--with` names only the optional services K2 knows; anything else is a usage error."""
    result = CliRunner().invoke(
        app, ["platform", "up", "--with", "spark"], env={"K2_DATA_DIR": str(tmp_path)}
    )
    assert result.exit_code == 2
    assert "trino" in result.output
