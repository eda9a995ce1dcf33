"""NAS over ResNeXt cardinality, width and depth: the command lines, the search's orchestration on
Ray Tune, and the report.

    cli.py                 what every command shares: flag types, one-line errors (exit 2), run_main
    search.py analyze.py export.py inspect.py train.py
                           the commands (`python -m nas.X`): parse flags, call the libraries, print
    errors.py              SettingError: the libraries name a setting, the commands name its flag
    orchestration/         running a search: settings, Ray, the Tuner, the driver's callbacks
    report/                reading a run directory: its format, figures, report.html, the export

    rundir/                a run directory: where it lives (local, shared, object store) and its format

    api.py                 the same from Python: nas.run_search(...), nas.write_report(run_dir),
                           nas.export_top(run_dir)

nas imports the other packages only through their roots (`search_spaces`, `trials`).
"""

from search_spaces import Architecture, build_model, load_architecture

from .api import SearchResult, export_top, make_settings, run_search, write_report
from .errors import SettingError

__all__ = ["Architecture", "SearchResult", "SettingError", "build_model", "export_top", "load_architecture",
           "make_settings", "run_search", "write_report"]
