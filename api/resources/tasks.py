"""The user's to-dos: list, read, light edits and delete (one row each, no worker needed)."""
from __future__ import annotations

from flask.views import MethodView
from flask_smorest import Blueprint
from sqlalchemy import exists, func, literal_column, select, type_coerce
from sqlalchemy.dialects.postgresql import JSONB

from api.db import get_db, get_read_db
from api.errors import ApiError
from api.pagination import page
from api.schemas import (
    CompletionPageSchema,
    PageQuerySchema,
    TaskListQuerySchema,
    TaskPageSchema,
    TaskPatchSchema,
    TaskSchema,
)
from api.security import auth_required, current_user, owned_or_404
from shared.db import is_postgres
from shared.models import Task, TaskCompletion, utcnow
from shared.repeat import RepeatError
from shared.todos import complete_task, completion_to_dict, set_repeat, task_to_dict

blp = Blueprint("tasks", __name__, url_prefix="/v1/tasks", description="The user's tasks (to-dos).")


def _own_task(task_id) -> Task:
    return owned_or_404(Task, task_id)


def _has_tag(session, tag: str):
    """A portable "tags contains tag" on the JSON column."""
    if is_postgres(session):
        # The column is typed as plain JSON, whose .contains() is a string LIKE: ask for
        # JSONB containment (@>, served by a GIN index if one is added) explicitly.
        return type_coerce(Task.tags, JSONB).contains([tag])
    each = func.json_each(Task.tags).table_valued("value")
    return exists(select(literal_column("1")).select_from(each).where(each.c.value == tag))


@blp.route("")
class Tasks(MethodView):
    decorators = [auth_required()]

    @blp.arguments(TaskListQuerySchema, location="query")
    @blp.response(200, TaskPageSchema)
    def get(self, query):
        """The caller's tasks, newest first; filter by open/done, due window and tag."""
        # A replica may answer (the caller's own recent writes keep them on the primary).
        session = get_read_db(current_user().id)
        stmt = select(Task).where(Task.user_id == current_user().id)
        if query["status"] != "all":
            stmt = stmt.where(Task.done == (query["status"] == "done"))
        if "due_before" in query:
            stmt = stmt.where(Task.due_at < query["due_before"])
        if "due_after" in query:
            stmt = stmt.where(Task.due_at >= query["due_after"])
        if "tag" in query:
            stmt = stmt.where(_has_tag(session, query["tag"].lower()))
        return page(session, stmt, Task, cursor=query["cursor"], limit=query["limit"],
                    to_dict=task_to_dict)


@blp.route("/<uuid:task_id>")
class TasksById(MethodView):
    decorators = [auth_required()]

    @blp.response(200, TaskSchema)
    @blp.alt_response(404, description="No such task (or not yours).")
    def get(self, task_id):
        """One task."""
        return task_to_dict(_own_task(task_id))

    @blp.arguments(TaskPatchSchema)
    @blp.response(200, TaskSchema)
    @blp.alt_response(404, description="No such task (or not yours).")
    def patch(self, data, task_id):
        """Edit title, notes, due date, reminder time, priority, tags, repeat rule, or complete it.

        `done: true` completes the current occurrence: a repeating task moves to its next one
        (and stays open) until its rule ends.
        """
        session = get_db()
        task = _own_task(task_id)
        now = utcnow()
        done = data.pop("done", None)
        rule = data.pop("repeat", ...)
        if "tags" in data:
            data["tags"] = list(dict.fromkeys(tag.lower() for tag in data["tags"]))
        if "remind_at" in data and data["remind_at"] != task.remind_at:
            # A new time is a new reminder, even if the old one was already sent.
            task.reminded_at = None
            task.reminder_status = None
        for name, value in data.items():
            setattr(task, name, value)
        if rule is not ...:
            try:
                set_repeat(task=task, rule=rule, now=now)
            except RepeatError as exc:
                raise ApiError(422, exc.code, str(exc), errors={"repeat": [str(exc)]}) from None
        if done is True:
            complete_task(session=session, task=task, now=now)
        elif done is False and task.done:
            task.done, task.completed_at = False, None
        session.commit()
        return task_to_dict(task)

    @blp.response(204)
    @blp.alt_response(404, description="No such task (or not yours).")
    def delete(self, task_id):
        """Delete a task."""
        session = get_db()
        session.delete(_own_task(task_id))
        session.commit()
        return None


@blp.route("/<uuid:task_id>/completions")
class TaskCompletions(MethodView):
    decorators = [auth_required()]

    @blp.arguments(PageQuerySchema, location="query")
    @blp.response(200, CompletionPageSchema)
    @blp.alt_response(404, description="No such task (or not yours).")
    def get(self, query, task_id):
        """The task's completed occurrences, newest first."""
        task = _own_task(task_id)
        stmt = select(TaskCompletion).where(TaskCompletion.task_id == task.id)
        return page(get_read_db(current_user().id), stmt, TaskCompletion, cursor=query["cursor"], limit=query["limit"],
                    to_dict=lambda completion: completion_to_dict(completion, task))
