"""NAS over ResNeXt cardinality, width and depth: the command lines, the search's orchestration on
Ray Tune, and the report.

    cli.py                 what every command shares: flag types, one-line errors (exit 2), run_main
    search.py analyze.py export.py inspect.py train.py
                           the commands (`python -m nas.X`): parse flags, call the libraries, print
    errors.py              SettingError: the libraries name a setting, the commands name its flag
    orchestration/         running a search: settings, Ray, the Tuner, the driver's callbacks
    report/                reading a run directory: its format, figures, report.html, the export

    api.py                 the same from Python: nas.search(...), nas.analyze(run_dir), nas.export(run_dir)

nas imports the other packages only through their roots (`search_spaces`, `trials`).
"""

from search_spaces import Architecture, build_model, load_architecture

from .api import SearchResult, analyze, export, search
from .errors import SettingError

__all__ = ["Architecture", "SearchResult", "SettingError", "analyze", "build_model", "export", "load_architecture",
           "search"]
