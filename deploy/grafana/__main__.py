"""``python -m deploy.grafana``: regenerate the dashboards' JSON models (``make dashboards``)."""

from deploy.grafana import write_dashboards

for path in write_dashboards():
    print(path)  # noqa: T201 - the files written are this command's output
