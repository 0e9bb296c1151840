"""Render benchmark sections as the markdown of ``docs/benchmarks.md``."""

from __future__ import annotations

import hashlib
import os
import platform
import subprocess
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path

from benchmarks.common import REPO_ROOT, Sizes
from benchmarks.results import Measure, Section, Table


@dataclass(frozen=True, slots=True)
class Machine:
    """Where the benchmarks ran."""

    cpus: str
    memory: str
    cpu_model: str
    system: str
    software: str
    code: str
    load: str
    source: str = ""


def _command(*args: str) -> str:
    try:
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return ""


def machine() -> Machine:
    """CPUs from ``nproc``, memory from ``free -g``, the CPU model from ``/proc/cpuinfo``."""
    memory = next(
        (line.split()[1] for line in _command("free", "-g").splitlines() if line.startswith("Mem:")), "?"
    )
    cpuinfo = Path("/proc/cpuinfo")
    model_lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    model = next(
        (line.split(":", 1)[1].strip() for line in model_lines if line.startswith("model name")), "?"
    )
    software = ", ".join(
        [f"Python {platform.python_version()}"]
        + [f"{p} {version(p)}" for p in ("pyarrow", "duckdb", "pyiceberg")]
    )
    commit = _command("git", "-C", str(REPO_ROOT), "rev-parse", "--short", "HEAD").strip() or "unknown"
    dirty = _command("git", "-C", str(REPO_ROOT), "status", "--porcelain", "--", "src").strip()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    # K2's own code as measured: the committed `src/` tree plus any uncommitted change to it, so
    # a commit touching only benchmarks or docs during a run does not count as K2 changing.
    tree = _command("git", "-C", str(REPO_ROOT), "rev-parse", "HEAD:src").strip()
    diff = _command("git", "-C", str(REPO_ROOT), "diff", "HEAD", "--", "src") + dirty
    return Machine(
        source=tree + (f"+{hashlib.sha256(diff.encode()).hexdigest()[:12]}" if diff else ""),
        load=load,
        code=f"K2 at commit {commit}" + (" with uncommitted changes in `src/`" if dirty else ""),
        cpus=_command("nproc").strip() or "?",
        memory=f"{memory} GiB",
        cpu_model=model,
        system=f"{platform.system()} {platform.release()}",
        software=software,
    )


def _cell(text: str) -> str:
    """A table cell; leading spaces (nesting) survive as non-breaking ones."""
    body = text.lstrip(" ")
    return "&nbsp;" * (len(text) - len(body)) + body.replace("|", "\\|")


def _row(cells: tuple[str, ...]) -> str:
    return "| " + " | ".join(map(_cell, cells)) + " |"


def _table(headers: tuple[str, ...], rows: list[tuple[str, ...]]) -> list[str]:
    return [_row(headers), _row(tuple("---" for _ in headers)), *map(_row, rows)]


def _met(measure: Measure) -> str:
    met = measure.met
    return "—" if met is None else ("yes" if met else "**no**")


def _ratio(measure: Measure) -> str:
    ratio = measure.ratio
    return "—" if ratio is None else f"{ratio:.2f}x"


def _measure_rows(section: Section) -> list[tuple[str, ...]]:
    return [
        (
            m.label,
            m.unit.show(m.k2),
            "—" if m.limit is None else m.unit.show(m.limit),
            _ratio(m),
            "—" if m.target is None else str(m.target),
            _met(m),
        )
        for m in section.measures
    ]


def _extra(table: Table) -> list[str]:
    return ["", f"**{table.title}**", "", *_table(table.headers, table.rows)]


def render(sections: list[Section], sizes: Sizes, seconds: float, where: Machine, kept: str = "") -> str:
    """The whole markdown document; ``kept``: the separately run sections to keep at its end."""
    now = datetime.now(UTC)
    lines = [
        "# Benchmarks",
        "",
        f"_Written by `python -m benchmarks.run` ({sizes.name} sizes) on {now:%Y-%m-%d %H:%M} UTC; "
        f"the run took {seconds / 60:.1f} min. Do not edit by hand: run the benchmarks again._",
        "",
        "Each benchmark measures K2 and, in the same run on the same data, the *limit*: the plainest "
        "way to do the same work with the libraries K2 is built on (pyarrow for ingest, DuckDB for "
        "queries, librdkafka for streaming); the peers benchmark's limit is instead the fastest of the "
        "field's specialist engines (QuestDB, chDB, DuckDB over native tables) on each query. The ratio is "
        "K2 / limit: for throughput below 1x means "
        "K2 is slower, for time, "
        "memory and bytes above 1x means K2 costs more. *Target* is the project's goal for K2's own "
        "figure; *met* compares K2 with it, not with the limit.",
        "",
        "Run them with `make bench` (`uv run --frozen --group bench python -m benchmarks.run`: the `bench` "
        "dependency group brings chDB); `--quick` runs small "
        "sizes and writes its report under `benchmarks/.data/` instead of this file. Generated data "
        "lives in `benchmarks/.data/` (gitignored, reused between runs); the ASX sample is read from "
        "`../shared/data/asx-sample`. The streaming and live-feed benchmarks run on the platform's "
        "services (`k2 platform up`; they start them when they are not running). `--only NAME` runs some "
        "benchmarks and writes its report under `benchmarks/.data/` too: this file only ever holds "
        "one full run, and after it the sections of benchmarks too long for it (`make bench-scale`), each "
        "written by its own run with its own date, which a full run keeps as they are.",
        "",
        f"Machine: {where.cpus} CPUs (`nproc`), {where.memory} RAM (`free -g`), {where.cpu_model}; "
        f"{where.system}; {where.software}. {where.code}. Load average (1, 5, 15 min) when the "
        f"run started: {where.load}. Absolute figures move between runs on a shared virtual "
        "machine; the ratios, measured side by side in one run, move less.",
        "",
        "## Targets",
        "",
        *_table(
            ("Benchmark", "Measure", "K2", "Limit", "Target", "Met"),
            [
                (
                    s.title,
                    m.label,
                    m.unit.show(m.k2),
                    "—" if m.limit is None else m.unit.show(m.limit),
                    str(m.target),
                    _met(m),
                )
                for s in sections
                for m in s.measures
                if m.target is not None
            ],
        ),
        "",
        "For each target not met, the measured reason and what would meet it: [docs/design.md, "
        '"Speed: the targets not met"](design.md#speed-the-targets-not-met-why-and-what-would-meet-them).',
    ]
    for number, section in enumerate(sections, start=1):
        lines += _section(f"{number}. {section.title}", section)
    return "\n".join(lines) + "\n" + (f"\n{kept}" if kept else "")


def _section(heading: str, section: Section) -> list[str]:
    lines = [
        "",
        f"## {heading}",
        "",
        section.description,
        "",
        *_table(
            ("Measure", "K2", f"Limit: {section.limit_name}", "K2 / limit", "Target", "Met"),
            _measure_rows(section),
        ),
    ]
    for table in section.tables:
        lines += _extra(table)
    lines += ["", *(f"- {note}" for note in section.notes)]
    lines.append(f"- This benchmark ran {section.seconds:.0f} s.")
    return lines


def _separate_marker(name: str) -> str:
    return f"<!-- benchmark run separately: {name} -->"


def render_separate(
    name: str, section: Section, sizes: Sizes, where: Machine, ended: datetime | None = None
) -> str:
    """The markdown of a benchmark the full run leaves out: its section, with its own date (when
    its run ``ended``; default now) and machine, behind a marker that :func:`splice` and
    :func:`separate_sections` find it by.
    """
    now = ended or datetime.now(UTC)
    return (
        "\n".join(
            [
                _separate_marker(name),
                *_section(section.title, section)[1:],
                f"- Written by `python -m benchmarks.run --only {name}` ({sizes.name} sizes) on "
                f"{now:%Y-%m-%d %H:%M} UTC, apart from the full run above, which keeps this section "
                "as it is. "
                f"Machine: {where.cpus} CPUs, {where.memory} RAM, {where.cpu_model}; {where.software}. "
                f"{where.code}. Load average (1, 5, 15 min) when it started: {where.load}.",
            ]
        )
        + "\n"
    )


def separate_sections(document: str) -> str:
    """The separately run sections at the end of ``document`` (empty if none)."""
    start = document.find(_separate_marker("").removesuffix(" -->"))
    return "" if start < 0 else document[start:]


def splice(document: str, name: str, block: str) -> str:
    """``document`` with the separately run section ``name`` replaced by ``block`` (appended when
    it is not there yet); separately run sections always come last, one after another.
    """
    marker = _separate_marker(name)
    start = document.find(marker)
    if start < 0:
        return document.rstrip("\n") + "\n\n" + block
    following = document.find(_separate_marker("").removesuffix(" -->"), start + len(marker))
    return document[:start] + block + ("" if following < 0 else "\n" + document[following:])
