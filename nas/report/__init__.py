"""The report side of a search: read a run directory, draw its figures, write report.html, export the
best architectures. Plain files in, plain files out: no Ray, and it knows no command line (its errors
are `RunDataError`s naming the setting; nas.analyze and nas.export turn them into `--flag: ...`).

    schema.py      the run directory's format: file names, columns and dtypes, outcomes, colours
    run_data.py    load_run: the run directory into pandas
    figures.py     the plotly figures
    importance.py  hyperparameter importance (optuna.importance)
    html.py        the page
    write.py       write_report: report.html, trials.parquet, architectures/*.json
    export.py      export_top: the best architectures, with the best one's weights
"""

from .export import export_top
from .figures import Section, build_sections, pareto_front
from .importance import param_importances
from .run_data import RunData, RunDataError, load_run, normalize_trials
from .schema import OUTCOMES, json_value
from .write import report_run, write_report

__all__ = [
    "OUTCOMES", "RunData", "RunDataError", "Section", "build_sections", "export_top", "json_value",
    "load_run", "normalize_trials", "param_importances", "pareto_front", "report_run", "write_report",
]
