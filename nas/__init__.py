"""NAS over ResNeXt cardinality, width and depth: the command lines, the search's orchestration on
Ray Tune, and the report.

    cli.py                 what every command shares: flag types, one-line errors (exit 2), run_main
    search.py analyze.py export.py inspect.py train.py
                           the commands (`python -m nas.X`): parse flags, call the libraries, print
    errors.py              SettingError: the libraries name a setting, the commands name its flag
    orchestration/         running a search: settings, Ray, the Tuner, the driver's callbacks
    report/                reading a run directory: its format, figures, report.html, the export

nas imports the other packages only through their roots (`search_spaces`, `trials`).
"""

from search_spaces import Architecture, build_model, load_architecture

__all__ = ["Architecture", "build_model", "load_architecture"]
