"""``podium evaluate`` and ``podium compare``: how good the served model is on labelled photographs.

A labelled folder goes through the running service as a normal job; scikit-learn judges
the answers; the report (json, confusion matrix, html) says how good, where it errs, and
two reports side by side say what changed.
"""

from podium.evaluate.compare import Comparison, compare_reports, read_report
from podium.evaluate.files import write_report_files
from podium.evaluate.metrics import Evaluation, Judged, report_json, wilson_interval
from podium.evaluate.record import EVALUATION_FILENAME, record_in_repository
from podium.evaluate.run import Source, evaluate_through_service

__all__ = [
    "EVALUATION_FILENAME",
    "Comparison",
    "Evaluation",
    "Judged",
    "Source",
    "compare_reports",
    "evaluate_through_service",
    "read_report",
    "record_in_repository",
    "report_json",
    "wilson_interval",
    "write_report_files",
]
