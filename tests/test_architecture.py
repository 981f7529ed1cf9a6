"""The layer rules and the module graph, read from the source (no servers needed).

`lint-imports` (setup.cfg's contracts) and `ruff check` run before pytest in `make test`;
these tests hold the same rules inside the suite, and add one the linter does not check:
no import cycle between our modules, not even through an import inside a function.
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import grimp
import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("api", "scheduler", "shared", "workers")

pytestmark = pytest.mark.fast


def import_cycles(graph) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph.find_modules_directly_imported_by(child)))))
                elif child in on_stack:
                    low[module] = min(low[module], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[module])
            if low[module] == index[module]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == module:
                        break
                if len(group) > 1:
                    cycles.append(sorted(group))
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    graph = grimp.ImportGraph()
    for name in ("a", "a.x", "a.y", "a.z"):
        graph.add_module(name)
    graph.add_import(importer="a.x", imported="a.y")
    graph.add_import(importer="a.y", imported="a.x")
    graph.add_import(importer="a.y", imported="a.z")
    assert import_cycles(graph) == [["a.x", "a.y"]]


def test_no_import_cycle_between_our_modules():
    graph = grimp.build_graph(*PACKAGES, include_external_packages=False)
    assert len(graph.modules) > 50
    assert import_cycles(graph) == []


def test_the_layer_contracts_hold():
    result = subprocess.run([str(Path(sys.executable).parent / "lint-imports"), "--no-cache"], cwd=ROOT,
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "2 kept, 0 broken" in result.stdout


def test_the_architecture_table_has_one_row_per_folder_of_the_tree():
    readme = (ROOT / "docs" / "architecture.md").read_text()
    section = readme.split("## The tree", 1)[1].split("\n\n", 2)[1]
    rows = [line.split("|")[1].strip().strip("`").rstrip("/") for line in section.splitlines()
            if line.startswith("| `")]
    tracked = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    folders = {path.split("/")[0] for path in tracked.splitlines() if "/" in path and not path.startswith(".")}
    assert len(rows) == len(set(rows)), f"a folder listed twice: {rows}"
    assert set(rows) == folders


def test_ownership_by_id_is_checked_in_one_place():
    # A check written by hand is where a 403 (which tells an attacker the id exists) or a
    # forgotten comparison creeps in: api.security.owned_or_404 is the one way.
    by_hand = [f"{path.relative_to(ROOT)}:{number}"
               for path in sorted((ROOT / "api").rglob("*.py"))
               for number, line in enumerate(path.read_text().splitlines(), 1)
               if ".user_id != current_user().id" in line and path.name != "security.py"]
    assert by_hand == []


def test_every_list_envelope_comes_from_the_page_schema_factory():
    copies = [f"{path.relative_to(ROOT)}:{number}"
              for path in sorted((ROOT / "api").rglob("*.py"))
              for number, line in enumerate(path.read_text().splitlines(), 1)
              if line.strip().startswith("next_cursor = fields.")]
    assert copies == [], "write page_schema(ItemSchema, 'NamePageSchema') (api.schemas) instead"


def test_job_code_opens_no_session_but_through_its_context():
    # A body's writes commit with the job's success; a write that must outlive a failed job
    # goes through JobContext.own_transaction(), the one way (workers/job_runner.py). A module
    # of plain Celery tasks that are not jobs (the push sender, workers/push.py; account mail,
    # workers/account_mail.py) has no context.
    def plain_tasks(text: str) -> bool:
        return "@app.task(" in text and "@job_task(" not in text

    job_modules = [path for path in sorted((ROOT / "workers").rglob("*.py"))
                   if path.name != "job_runner.py" and not plain_tasks(path.read_text())]
    assert sorted(path.name for path in (ROOT / "workers").rglob("*.py")
                  if plain_tasks(path.read_text())) == ["account_mail.py", "push.py"]
    opened = [f"{path.relative_to(ROOT)}:{number}"
              for path in job_modules
              for number, line in enumerate(path.read_text().splitlines(), 1)
              if "new_session(" in line or "session_scope(" in line]
    assert opened == []


def _python_outside_the_engine():
    """Our modules outside shared/jobs/ (migrations change the table's shape, not its rows)."""
    for package in (*PACKAGES, "bench"):
        for path in sorted((ROOT / package).rglob("*.py")):
            relative = path.relative_to(ROOT).as_posix()
            if not relative.startswith(("shared/jobs/", "shared/migrations/")):
                yield relative, ast.parse(path.read_text(), relative)


JOB_COLUMNS = {"status", "run_token", "enqueued_at", "progress", "progress_message", "result", "attempts",
               "started_at", "finished_at", "expires_at", "error_code", "error_message", "slot", "updated_at"}


def test_every_write_of_a_job_row_is_in_the_engine_package():
    # Writes of job rows in several places drift apart (the CLI's cancel forgot the status
    # cache): every UPDATE or INSERT of `jobs` goes through shared.jobs.
    writes = []
    for relative, tree in _python_outside_the_engine():
        for node in ast.walk(tree):
            where = f"{relative}:{getattr(node, 'lineno', 0)}"
            if isinstance(node, ast.Call):
                name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
                target = ast.unparse(node.args[0]) if node.args else ""
                if name in ("update", "insert") and target in ("Job", "Job.__table__"):
                    writes.append(where)
                if name == "Job":  # a new row built by hand
                    writes.append(where)
            elif isinstance(node, ast.Constant) and isinstance(node.value, str):
                if re.search(r"\b(UPDATE|INSERT\s+INTO)\s+jobs\b", node.value, re.IGNORECASE):
                    writes.append(where)
            elif isinstance(node, (ast.Assign, ast.AugAssign)):
                for target in node.targets if isinstance(node, ast.Assign) else [node.target]:
                    if (isinstance(target, ast.Attribute) and target.attr in JOB_COLUMNS
                            and re.fullmatch(r"(\w+_)?job", ast.unparse(target.value))):
                        writes.append(where)
    assert writes == []


def test_no_module_outside_the_engine_imports_its_private_names():
    private = []
    for relative, tree in _python_outside_the_engine():
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("shared.jobs"):
                private += [f"{relative}: {node.module}.{alias.name}" for alias in node.names
                            if alias.name.startswith("_")]
            elif (isinstance(node, ast.Attribute) and node.attr.startswith("_") and not node.attr.startswith("__")
                  and ast.unparse(node.value).split(".")[0] in ("status_cache", "outbox", "wakeups", "transitions")):
                private.append(f"{relative}:{node.lineno}: {ast.unparse(node)}")
    assert private == []
