"""A long-running command's metrics port is registered for the platform's Prometheus while the
process lives, and unregistered when it exits.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from k2.testing.processes import free_ports

COMMAND = """
import json, sys
from pathlib import Path
from k2.cli._metrics import served_metrics
from k2.settings import K2Settings
with served_metrics(K2Settings(), "sink", int(sys.argv[1])):
    folder = Path(sys.argv[2])
    print(json.dumps([json.loads(p.read_text()) for p in folder.glob("k2-sink-*.json")]))
"""


def test_a_served_port_is_registered_until_the_process_exits(tmp_path: Path) -> None:
    """Under the platform profile the process's port is in one k2-sink-<pid>-<port>.json while it runs;
    nothing is left after it exits.
    """
    (port,) = free_ports(1)
    folder = tmp_path / "platform" / "prometheus" / "targets"
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("K2_")},
        "K2_PROFILE": "platform",
        "K2_DATA_DIR": str(tmp_path / "lake"),
        "K2_PLATFORM_DATA": str(tmp_path / "platform"),
    }
    done = subprocess.run(
        [sys.executable, "-c", COMMAND, str(port), str(folder)],
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )
    assert json.loads(done.stdout.splitlines()[-1]) == [
        [{"targets": [f"127.0.0.1:{port}"], "labels": {"job": "k2-sink"}}]
    ]
    assert list(folder.iterdir()) == []
