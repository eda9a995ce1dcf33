"""A run directory: where it lives and what it holds. Below both the search (nas.orchestration, which
writes runs) and the report (nas.report, which reads them), so neither needs the other to know a run.

    location.py   RunLocation: a local directory, a shared mount or an object store URI (pyarrow.fs)
    schema.py     the run directory's format: file names, columns and dtypes, outcomes, colours

Importing this package imports neither ray, torch, pandas nor plotly (only pyarrow.fs).
"""

from .location import RunLocation, StorageError, ThrottledWriter, is_uri
from .schema import BEST_JSON, EPOCHS_CSV, REPORT_HTML, SEARCH_JSON, TRIALS_CSV

__all__ = ["BEST_JSON", "EPOCHS_CSV", "REPORT_HTML", "RunLocation", "SEARCH_JSON", "StorageError", "TRIALS_CSV",
           "ThrottledWriter", "is_uri"]
