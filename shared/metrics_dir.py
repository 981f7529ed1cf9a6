"""Where prometheus_client keeps the values of a process family (PROMETHEUS_MULTIPROC_DIR).

Kept apart from shared.metrics, which imports prometheus_client: prometheus_client reads
the variable once, at its import, so a parent process (gunicorn's master, the Celery
worker's main process) calls `prepare_multiprocess_dir` before that import.
"""
from __future__ import annotations

import os
import shutil
import sys
import tempfile

_made_here: str | None = None


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def prepare_multiprocess_dir(default_prefix: str) -> str:
    """Point PROMETHEUS_MULTIPROC_DIR at an empty directory, before any metric is created.

    Unset, a fresh temporary directory is made. Values left by an earlier run in the same
    directory would be added to this run's, so it is emptied.
    """
    global _made_here
    path = multiprocess_dir()
    if path is None:
        path = _made_here = tempfile.mkdtemp(prefix=default_prefix)
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = path
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))
    values = sys.modules.get("prometheus_client.values")
    if values is not None:
        # Imported already (Celery's command line loads Flower's plugin, which imports it):
        # switch it to the directory now. Our metrics all have labels, and a labelled
        # metric makes its value objects at .labels(), from this very attribute.
        values.ValueClass = values.get_value_class()
    return path


def remove_own_multiprocess_dir() -> None:
    """On the parent's exit: remove the directory if `prepare_multiprocess_dir` made it."""
    if _made_here is not None and os.environ.get("PROMETHEUS_MULTIPROC_DIR") == _made_here:
        shutil.rmtree(_made_here, ignore_errors=True)
