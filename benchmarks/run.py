"""Run the benchmarks and write their report.

    uv run --frozen python -m benchmarks.run [--quick] [--only NAME]... [--output FILE]

A full run of every benchmark rewrites ``docs/benchmarks.md``; a quick or partial run writes
``benchmarks/.data/benchmarks-<sizes>.md`` unless ``--output`` says otherwise, so the document
only ever holds full-size numbers from one run.

A benchmark of ``SEPARATE`` is too long for the full run: only ``--only NAME`` runs it, and at
full size it also replaces its own section at the end of ``docs/benchmarks.md``, which the full
run keeps as it is.
"""

from __future__ import annotations

import argparse
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from benchmarks.api import latency as api_latency
from benchmarks.common import DATA_DIR, DOCS_FILE, FULL, QUICK, REPO_ROOT, Sizes, log
from benchmarks.console import section as console
from benchmarks.feed import section as feed
from benchmarks.ingest import asx as ingest_asx
from benchmarks.ingest import synthetic as ingest_synthetic
from benchmarks.peers import section as peers
from benchmarks.query import latency as query_latency
from benchmarks.report import machine, render, render_separate, separate_sections, splice
from benchmarks.results import Section
from benchmarks.scale import section as scale
from benchmarks.soak import section as soak
from benchmarks.stream import section as stream

BENCHMARKS: dict[str, Callable[[Sizes], Section]] = {
    "asx": ingest_asx.run,
    "synthetic": ingest_synthetic.run,
    "query": query_latency.run,
    "api": api_latency.run,
    "stream": stream.run,
    "feed": feed.run,
    "peers": peers.run,
    "soak": soak.run,
}
#: Run only when named, each writing its own section of the document (see the module docstring).
SEPARATE: dict[str, Callable[[Sizes], Section]] = {
    scale.NAME: scale.run,
    console.NAME: console.run,
}


def main(argv: list[str] | None = None) -> int:
    """Run the chosen benchmarks; return the exit status."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--quick", action="store_true", help="small sizes, for trying the suite out")
    parser.add_argument(
        "--only",
        action="append",
        choices=sorted(BENCHMARKS | SEPARATE),
        help="run only these (repeatable); the only way to run " + ", ".join(SEPARATE),
    )
    parser.add_argument("--output", type=Path, help="where to write the markdown report")
    args = parser.parse_args(argv)
    sizes = QUICK if args.quick else FULL
    chosen = {**BENCHMARKS, **SEPARATE}
    names = [name for name in BENCHMARKS if not args.only or name in args.only]
    names += [name for name in SEPARATE if args.only and name in args.only]
    complete = sizes is FULL and set(names) == set(BENCHMARKS)
    if not complete and args.output is not None and args.output.resolve() == DOCS_FILE.resolve():
        # A partial report written there would replace every section it did not run.
        parser.error(f"only a full run of every benchmark writes {DOCS_FILE.relative_to(REPO_ROOT)}")
    output: Path = args.output or (DOCS_FILE if complete else DATA_DIR / f"benchmarks-{sizes.name}.md")
    DATA_DIR.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    where = machine()
    sections: list[Section] = []
    failed = []
    for name in names:
        log(f"benchmark {name} ({sizes.name} sizes)")
        began = time.perf_counter()
        try:
            section = chosen[name](sizes)
        except Exception:  # a failed benchmark must not hide the others' results
            traceback.print_exc()
            failed.append(name)
            continue
        section.seconds = time.perf_counter() - began
        sections.append(section)
        for measure in section.measures:
            ratio = "" if measure.ratio is None else f"  (K2/limit {measure.ratio:.2f}x)"
            limit = "" if measure.limit is None else f"  limit {measure.unit.show(measure.limit)}"
            print(f"    {measure.label}: K2 {measure.unit.show(measure.k2)}{limit}{ratio}")
    if failed:
        output = DATA_DIR / "benchmarks-failed.md"
    output.parent.mkdir(parents=True, exist_ok=True)
    after = machine()
    if after.source != where.source:
        where = replace(
            where, code=f"{where.code} at the start, {after.code} at the end (K2 changed during the run)"
        )
    kept = separate_sections(DOCS_FILE.read_text()) if output == DOCS_FILE and DOCS_FILE.is_file() else ""
    output.write_text(render(sections, sizes, time.perf_counter() - started, where, kept))
    if sizes is FULL and not failed:
        for name, section in zip(names, sections, strict=True):
            if name in SEPARATE:
                DOCS_FILE.write_text(
                    splice(DOCS_FILE.read_text(), name, render_separate(name, section, sizes, where))
                )
                log(f"replaced the {name} section of {DOCS_FILE.relative_to(REPO_ROOT)}")
    log(f"wrote {output} after {(time.perf_counter() - started) / 60:.1f} min")
    if failed:
        log(f"FAILED: {', '.join(failed)}")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
