"""Write a run's report files: RUN_DIR/report.html, trials.parquet beside the search's trials.csv,
architectures/<trial_id>.json (resnext-arch/1) and, when kaleido is installed, PNG copies of the
figures under figures/.

RUN_DIR may be on an object store (s3://...): the files are written to a local folder and uploaded
(RunLocation.staged; plotly and kaleido write local files). Works on partial runs (a search still
running or interrupted) and on failed trials: whatever is missing becomes a note in the page, never an exception.
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

from search_spaces import save_architecture

from ..rundir.location import RunLocation
from ..rundir.schema import ARCHITECTURES, REPORT_HTML, TRIALS_PARQUET
from .figures import Section, build_sections
from .html import render
from .run_data import RunData, RunDataError, load_run, safe_name, trials_for_export

DEFAULT_TOP = 10


def write_report(run_dir: str | Path | RunLocation, top: int = DEFAULT_TOP) -> Path | str:
    """Analyse RUN_DIR; write report.html, trials.parquet and architectures/*.json; return the report's
    path (a local Path, or the URI without its query for a run on an object store).

    Raises `RunDataError` (naming `run_dir` or `top`) when RUN_DIR is not a run directory or top < 1.
    """
    return report_run(run_dir, top)[0]


def report_run(run_dir: str | Path | RunLocation, top: int = DEFAULT_TOP) -> tuple[Path | str, RunData]:
    """write_report, also returning the loaded run (its warnings and outcome counts)."""
    if top < 1:
        raise RunDataError("top", "expected a positive integer, got {top}", top=top)
    run = load_run(run_dir)
    with run.location.staged() as out:  # RUN_DIR itself when local; uploaded on exit otherwise
        run.out_dir = out
        try:
            write_parquet(run)
            arch_links = write_architectures(run)
            sections = build_sections(run)
            page = render(run, sections, arch_links, top)
            path = out / REPORT_HTML
            tmp = path.with_name(f".{REPORT_HTML}.{os.getpid()}.tmp")
            tmp.write_text(page, encoding="utf-8")
            tmp.replace(path)
            write_pngs(run, sections)
        finally:
            run.out_dir = None
    return (path if run.location.is_local else f"{run.where}/{REPORT_HTML}"), run


def write_parquet(run: RunData) -> Path | None:
    path = (run.out_dir or run.run_dir) / TRIALS_PARQUET
    try:
        trials_for_export(run.trials).to_parquet(path, index=False)
    except (ImportError, ValueError, TypeError, OSError) as exc:  # pyarrow missing or odd column
        run.warnings.append(f"{TRIALS_PARQUET} not written: {exc}")
        return None
    return path


def write_architectures(run: RunData) -> dict[str, str]:
    """architectures/<trial_id>.json for every trial with a valid arch; {trial_id: relative link}."""
    links = {}
    for tid, arch in zip(run.trials["trial_id"], run.trials["architecture"], strict=True):
        if arch is None:
            continue
        rel = f"{ARCHITECTURES}/{safe_name(tid)}.json"
        save_architecture(arch, (run.out_dir or run.run_dir) / rel)
        links[tid] = rel
    return links


def write_pngs(run: RunData, sections: list[Section]) -> list[Path]:
    """PNG copies of the figures, only where kaleido (and the browser it drives) is available."""
    if importlib.util.find_spec("kaleido") is None:
        return []
    out = []
    for s in sections:
        if s.figure is None:
            continue
        path = (run.out_dir or run.run_dir) / "figures" / f"{s.key}.png"
        path.parent.mkdir(exist_ok=True)
        try:
            s.figure.write_image(path, width=1200, height=s.figure.layout.height or 500, scale=2)
        except Exception as exc:  # noqa: BLE001 - optional output: any kaleido/browser failure just skips
            run.warnings.append(f"PNG copies skipped: {exc}")
            break
        out.append(path)
    return out


__all__ = ["DEFAULT_TOP", "report_run", "write_report"]
