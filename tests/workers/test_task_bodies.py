"""Tasks are thin: a task loads, sets limits and calls a service function a test can call.

Measured on the source with `ast`: every function registered as a Celery task (by
`@job_task(...)` or `@app.task(...)`) in workers/ and scheduler/ has a body of at most
MAX_LINES lines, its docstring not counted.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
MAX_LINES = 30

pytestmark = pytest.mark.fast


def _is_task_decorator(node: ast.expr) -> bool:
    call = node.func if isinstance(node, ast.Call) else node
    if isinstance(call, ast.Name):
        return call.id == "job_task"
    return isinstance(call, ast.Attribute) and call.attr == "task"


def task_bodies() -> dict[str, int]:
    """Lines of each task body, by module path and function name."""
    sizes = {}
    for path in sorted([*ROOT.glob("workers/**/*.py"), *ROOT.glob("scheduler/**/*.py")]):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            if not isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                continue
            if not any(_is_task_decorator(d) for d in node.decorator_list):
                continue
            body = node.body
            if body and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
                body = body[1:] or body  # the docstring is not code
            sizes[f"{path.relative_to(ROOT)}:{node.name}"] = body[-1].end_lineno - body[0].lineno + 1
    return sizes


def test_the_measure_finds_the_tasks():
    sizes = task_bodies()
    # One per job type plus the scheduler's periodic tasks: a measure that found none would pass.
    assert "workers/agents.py:plan_day_task" in sizes
    assert "scheduler/sweep.py:sweep_task" in sizes
    assert len(sizes) >= 20


def test_no_task_body_is_over_30_lines():
    fat = {name: lines for name, lines in task_bodies().items() if lines > MAX_LINES}
    assert fat == {}, f"task bodies over {MAX_LINES} lines (move the work into a service function): {fat}"
