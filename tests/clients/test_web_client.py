"""The web client and admin panel in a real browser, against gunicorn and a Celery worker on
PostgreSQL + Redis, with the AI agents pointed at the fake OpenAI server.

The pages are the built files (`make test` and `make run` build clients/web/dist) served
by the API at /app/, as `make run` serves them.
"""
from __future__ import annotations

import re
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urlsplit

import pytest
import requests
from cryptography.fernet import Fernet
from playwright.sync_api import expect
from sqlalchemy import func, select

from shared import db
from shared.models import Backup, Job, Memory, ProposedAction, User
from tests.clients.conftest import DESKTOP, PHONE
from tests.clients.npm import WEB
from tests.fakes.openai_server import FakeOpenAI
from tests.support import PASSWORD, ServerProcess, WorkerProcess, create_user, wait_until

pytestmark = pytest.mark.worker

CLOSED = "http://127.0.0.1:9"  # Google is configured (approvals need it) but never reached


@pytest.fixture(scope="module")
def fake_ai():
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def web(worker, fake_ai):
    """The API serving the built web client, and a worker with AI, in place of the suite's worker."""
    if not (WEB / "dist" / "index.html").is_file():
        pytest.fail("clients/web/dist is not built: `make test` builds it (or: make web)")
    env = {
        "OPENAI_API_KEY": "sk-test-not-secret", "OPENAI_BASE_URL": fake_ai.url, "OPENAI_MODEL": "fake-model",
        "AI_TIMEOUT_SECONDS": "5", "AI_MAX_RETRIES": "0",
        "GOOGLE_CLIENT_ID": "web-test.apps.googleusercontent.com", "GOOGLE_CLIENT_SECRET": "not-a-secret",
        "GOOGLE_REDIRECT_URI": f"{CLOSED}/v1/integrations/google/callback", "GOOGLE_AUTH_URI": f"{CLOSED}/auth",
        "GOOGLE_TOKEN_URI": f"{CLOSED}/token", "GOOGLE_REVOKE_URI": f"{CLOSED}/revoke", "GOOGLE_API_ROOT": f"{CLOSED}/",
        "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
    }
    with worker.paused():
        own = WorkerProcess(env=env).start()
        # The api says reset mail is available (its worker has no SMTP_URL: it logs the link).
        server = ServerProcess(env={**env, "SMTP_URL": CLOSED.replace("http", "smtp")}).start()
        server.worker = own
        yield server
        server.stop()
        own.stop()


# The refresh token the page keeps in IndexedDB (idb-keyval's default store), read in the page.
KEPT_TOKEN = """() => new Promise((resolve, reject) => {
  const opened = indexedDB.open("keyval-store");
  opened.onerror = () => reject(opened.error);
  opened.onsuccess = () => {
    const read = opened.result.transaction("keyval").objectStore("keyval").get("assistant.refresh_token");
    read.onsuccess = () => resolve(read.result ?? null);
    read.onerror = () => reject(read.error);
  };
})"""


def sign_up(page, base: str) -> str:
    email = f"web-{uuid.uuid4().hex[:8]}@example.com"
    page.goto(f"{base}/app/")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    expect(page.get_by_label("Quick add")).to_be_visible()
    return email


def sign_in(page, base: str, email: str, path: str = "/app/") -> None:
    page.goto(f"{base}{path}")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()


def test_create_account_quick_add_edit_reload_and_sign_out(browser_page, web):
    page = browser_page
    sign_up(page, web.url)

    page.get_by_label("Quick add").fill("call mom tomorrow 5pm #family !high")
    page.get_by_role("button", name="Add").click()

    tasks = page.get_by_role("list", name="Tasks")
    item = tasks.get_by_role("listitem").filter(has_text="call mom")
    expect(item).to_have_count(1)
    due = item.locator("time")
    expect(due).to_have_attribute("datetime", re.compile(r"T17:00:00\+01:00$"))  # the user's zone: the browser's
    expect(due).to_contain_text("17:00")
    expect(item).to_contain_text("#family")
    expect(page.get_by_label("Quick add")).to_have_value("")

    # A new due date, typed in the user's own time.
    item.get_by_role("button", name="Edit due date of call mom").click()
    item.get_by_label("Due date").fill("2026-12-24T09:30")
    item.get_by_role("button", name="Save").click()
    expect(item.locator("time")).to_have_attribute("datetime", "2026-12-24T09:30:00+01:00")

    # Only the refresh token is kept (in IndexedDB); the access token lives in memory.
    assert page.evaluate("localStorage.length + sessionStorage.length") == 0
    kept = page.evaluate(KEPT_TOKEN)
    assert kept and kept.count(".") == 0  # opaque, not a JWT

    page.reload()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()
    item = page.get_by_role("list", name="Tasks").get_by_role("listitem").filter(has_text="call mom")
    expect(item).to_have_count(1)

    item.get_by_role("checkbox", name="Done: call mom").check()
    expect(page.get_by_role("list", name="Tasks").get_by_role("listitem")).to_have_count(0)  # off the open list
    page.get_by_role("button", name="Done", exact=True).click()
    expect(page.get_by_role("checkbox", name="Done: call mom")).to_be_checked()

    page.goto(f"{web.url}/app/admin")
    expect(page.get_by_role("alert")).to_contain_text("Not allowed")
    expect(page.get_by_role("link", name="Admin")).to_have_count(0)

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    assert page.evaluate(KEPT_TOKEN) is None
    page.reload()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_changing_and_resetting_the_password_and_googles_error_text(browser_page, web):
    from shared.accounts import issue_reset
    from shared.models import PasswordReset, User
    from shared.settings import get_settings
    from tests.support import wait_until

    page = browser_page
    email = sign_up(page, web.url)
    page.get_by_role("link", name="Settings").click()
    page.get_by_label("Current password", exact=True).fill("not-my-password")
    page.get_by_label("New password", exact=True).fill("n3w-passw0rd")
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("alert")).to_contain_text("The current password is wrong")
    page.get_by_label("Current password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Change password").click()
    expect(page.get_by_role("status").filter(has_text="Password changed")).to_be_visible()
    page.get_by_role("button", name="Sign out").click()

    page.get_by_role("button", name="Forgot password?").click()
    page.get_by_label("Email").fill(email)
    page.get_by_role("button", name="Send reset link").click()
    expect(page.get_by_role("status")).to_contain_text("on its way")

    # The worker made a link (and, without SMTP, logged it); a newer one, as a second request
    # would make, voids it. The mail itself: tests/workers/test_account_mail.py.
    def links():
        with db.session_scope() as session:
            return session.scalars(select(PasswordReset).join(User, User.id == PasswordReset.user_id)
                                   .where(User.email == email)).all()
    wait_until(links, message="the worker's reset link")
    with db.session_scope() as session:
        _, link = issue_reset(session=session, email=email, settings=get_settings())
    page.goto(f"{web.url}/app/reset#token={link.split('#token=')[1]}")
    expect(page).not_to_have_url(re.compile("token"))  # single-use: out of the history at once
    page.get_by_label("New password", exact=True).fill("reset-passw0rd")
    page.get_by_role("button", name="Set new password").click()
    expect(page.get_by_role("status")).to_contain_text("Your password was changed")
    page.get_by_role("button", name="Go to sign in").click()
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("reset-passw0rd")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    # Whatever ?error= a crafted link carries, the page says a fixed text of its own.
    page.goto(f"{web.url}/app/google?error=Your+account+is+locked:+call+1-800-SCAM")
    expect(page.get_by_role("alert")).to_contain_text("Google did not grant access")
    expect(page.get_by_text("1-800-SCAM")).to_have_count(0)


def test_two_tabs_reloading_at_once_both_stay_signed_in(browser_page, web):
    """Each tab refreshes its session on load. Two rotations of one refresh token would
    look like theft to the API and end the session; the tabs take turns (navigator.locks)."""
    page = browser_page
    sign_up(page, web.url)
    other = page.context.new_page()
    other.goto(f"{web.url}/app/jobs")
    expect(other.get_by_role("button", name="Sign out")).to_be_visible()

    for _ in range(3):
        # Both reload at the same instant of the browser's clock, so their refreshes race.
        # (Each round waits for both new pages: a reload while a refresh is on its way
        # loses the rotated token, which no lock can help.)
        at = page.evaluate("Date.now() + 400")
        with page.expect_event("load"), other.expect_event("load"):
            for tab in (page, other):
                tab.evaluate(f"setTimeout(() => location.reload(), {at} - Date.now())")
        for tab in (page, other):
            expect(tab.get_by_role("button", name="Sign out")).to_be_visible()
            expect(tab.get_by_role("button", name="Sign in")).to_have_count(0)
    page.get_by_label("Quick add").fill("still signed in")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_role("list", name="Tasks").get_by_role("listitem")).to_have_count(1)

    # Signing out in one tab signs the other out too.
    other.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()


def test_the_assistant_proposes_an_event_and_the_user_approves_it(browser_page, web, fake_ai):
    fake_ai.script(
        fake_ai.tool_call("propose_event", {"summary": "Focus block", "start": "2026-12-02T09:00:00",
                                            "end": "2026-12-02T11:00:00"}),
        fake_ai.reply("I proposed a focus block on Wednesday morning."),
    )
    page = browser_page
    sign_up(page, web.url)
    page.get_by_role("link", name="Chat").click()

    page.get_by_label("Message").fill("find me two hours to focus on Wednesday")
    page.get_by_role("button", name="Send").click()

    conversation = page.get_by_role("list", name="Conversation", exact=True)
    expect(conversation).to_contain_text("I proposed a focus block on Wednesday morning.")
    proposal = page.get_by_role("group", name=re.compile("^Proposed: Focus block"))
    expect(proposal).to_be_visible()
    proposal.get_by_role("button", name="Approve").click()
    expect(proposal.get_by_role("status")).to_have_text("Approved")

    with db.session_scope() as session:
        action = session.scalar(select(ProposedAction).where(ProposedAction.summary.startswith("Focus block")))
        assert action.status == "approved" and action.action_job_id is not None
        assert session.get(Job, action.action_job_id).type == "calendar.create_event"
    # What the user typed reached the model.
    assert any("find me two hours" in (m.get("content") or "") for m in fake_ai.requests[0]["messages"])

    # The conversation is kept: it is listed and reopens with its approval.
    page.reload()
    page.get_by_role("list", name="Conversations").get_by_role("button").first.click()
    expect(page.get_by_role("group", name=re.compile("^Proposed: Focus block")).get_by_role("status")).to_have_text("Approved")


def test_an_approval_card_shows_every_recipient_of_a_hostile_draft_and_its_body(browser_page, web, fake_ai):
    to = [f"colleague{i}@corp.example" for i in range(1, 13)] + ["attacker@evil.example"]
    body = ("Hi all,\nthe code is 482913.\n" + "More text.\n" * 40
            + "Budget: https://docs.corp.example/budget\nPay at https://evil.example/pay\nThe end.")
    fake_ai.script(fake_ai.tool_call("propose_draft", {"to": to, "subject": "Re: budget", "body": body}),
                   fake_ai.reply("I drafted the reply."))
    page = browser_page
    sign_up(page, web.url)
    page.get_by_role("link", name="Chat").click()
    page.get_by_label("Message").fill("reply to the budget mail with https://docs.corp.example/budget")
    page.get_by_role("button", name="Send").click()

    card = page.get_by_role("group", name=re.compile("^Proposed: Draft to 13"))
    expect(card).to_be_visible()
    recipients = card.get_by_role("list", name="To recipients")
    expect(recipients.get_by_role("listitem")).to_have_count(13)
    for address in to:
        expect(recipients).to_contain_text(address)
    expect(recipients.get_by_role("listitem").last).to_contain_text("never written to")
    shown = card.get_by_label("Body")
    expect(shown).to_contain_text("the code is 482913.")
    expect(shown).to_contain_text("The end.")  # the whole body, scrollable, not cut
    assert shown.evaluate("e => e.scrollHeight > e.clientHeight")
    # A link the user gave is kept and shown as text with its host; the model's own link to
    # another host became text; nothing in the card is a live link.
    expect(card.get_by_role("list", name="Links")).to_have_text("https://docs.corp.example/budget (docs.corp.example)")
    expect(shown).to_contain_text("Pay at link (evil.example)")
    expect(card.locator("a")).to_have_count(0)


def test_a_proposed_memory_appears_only_once_approved_and_is_gone_after_erasure(browser_page, web, fake_ai):
    fake_ai.script(fake_ai.tool_call("propose_memory", {"text": "My manager is Dana"}),
                   fake_ai.reply("Shall I remember that?"))
    page = browser_page
    email = sign_up(page, web.url)
    page.get_by_role("link", name="Chat").click()
    page.get_by_label("Message").fill("my manager is Dana")
    page.get_by_role("button", name="Send").click()
    card = page.get_by_role("group", name=re.compile("^Proposed: Remember"))
    expect(card).to_contain_text("My manager is Dana")

    page.get_by_role("link", name="Settings").click()
    memories = page.get_by_role("list", name="Memories")
    expect(page.get_by_text("Nothing yet.")).to_be_visible()
    expect(memories.get_by_role("listitem")).to_have_count(0)

    page.get_by_role("link", name="Chat").click()
    page.get_by_role("list", name="Conversations").get_by_role("button").first.click()
    card = page.get_by_role("group", name=re.compile("^Proposed: Remember"))
    card.get_by_role("button", name="Approve").click()
    expect(card.get_by_role("status")).to_have_text("Approved")

    def kept() -> int:  # the approved memories.create job runs on the worker
        with db.session_scope() as session:
            return session.scalar(select(func.count()).select_from(Memory).join(User, Memory.user_id == User.id)
                                  .where(User.email == email))
    wait_until(kept, timeout=20, message="the approved memory to be kept")
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("list", name="Memories").get_by_role("listitem")).to_have_text(
        [re.compile("My manager is Dana")])
    with db.session_scope() as session:
        user = session.scalar(select(User).where(User.email == email))
        assert session.scalar(select(func.count()).select_from(Memory).filter_by(user_id=user.id)) == 1

    page.get_by_role("button", name="Delete my account…").click()
    page.get_by_label("Type your email to confirm").fill(email)
    page.get_by_role("button", name="Delete my account", exact=True).click()

    def erased() -> bool:
        with db.session_scope() as session:
            return session.get(User, user.id) is None
    wait_until(erased, timeout=30, message="the account to be erased")
    with db.session_scope() as session:
        assert session.scalar(select(func.count()).select_from(Memory).filter_by(user_id=user.id)) == 0


def test_the_admin_panel_shows_queues_and_workers_and_backs_up_now(browser_page, web):
    admin = create_user(f"admin-{uuid.uuid4().hex[:8]}@example.com", role="admin")
    page = browser_page
    sign_in(page, web.url, admin.email)
    page.get_by_role("link", name="Admin").click()

    queues = page.get_by_role("region", name="Queues")
    for queue in ("interactive", "sync", "reports", "maintenance"):
        expect(queues.get_by_role("rowheader", name=queue)).to_be_visible()
    expect(queues.get_by_role("list", name="Workers online")).to_contain_text("test-")  # the worker's heartbeat
    users = page.get_by_role("region", name="Users")
    expect(users).to_contain_text("Active in the last day")

    backups = page.get_by_role("region", name="Backups")
    backups.get_by_role("button", name="Back up now").click()
    expect(backups.get_by_role("status")).to_have_text("Backup: done.", timeout=120_000)
    expect(backups.get_by_role("table", name="Backups").get_by_role("row")).to_have_count(2)  # header + the backup
    with db.session_scope() as session:
        assert session.scalar(select(Backup.sha256)) is not None

    # The backup job is there among every user's jobs, filtered by status and type.
    jobs = page.get_by_role("region", name="Jobs of every user")
    jobs.get_by_label("Status").select_option("succeeded")
    jobs.get_by_label("Type").fill("ops.backup")
    jobs.get_by_role("button", name="Filter").click()
    rows = jobs.get_by_role("table", name="Jobs of every user").get_by_role("row")
    expect(rows).to_have_count(2)
    expect(rows.nth(1)).to_contain_text(admin.email)

    # On a phone, filled tables and all, the panel fits the screen: wide tables scroll in their
    # own box, never the page sideways.
    page.set_viewport_size(PHONE)
    expect(rows).to_have_count(2)
    overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
    wide = page.evaluate("[...document.querySelectorAll('body *')].filter((e) => e.getBoundingClientRect().right"
                         " > innerWidth).slice(0, 8).map((e) => e.tagName + '.' + e.className)")  # to say what
    assert overflow <= 0, f"the admin panel scrolls sideways by {overflow}px on a phone {wide}"
    for region in ("Queues", "Users", "Backups", "Jobs of every user"):
        box = page.get_by_role("region", name=region).bounding_box()
        assert box and box["x"] >= 0 and box["x"] + box["width"] <= PHONE["width"], f"{region} is off the phone"


def test_it_reads_well_on_a_phone_and_a_desktop(browser_page, web, tmp_path):
    page = browser_page
    sign_up(page, web.url)
    page.get_by_label("Quick add").fill("book the dentist friday 9am !urgent #health")
    page.get_by_role("button", name="Add").click()
    expect(page.get_by_role("list", name="Tasks").get_by_role("listitem")).to_have_count(1)

    for name, size in (("phone", PHONE), ("desktop", DESKTOP)):
        page.set_viewport_size(size)
        for screen in ("Tasks", "Agenda", "Chat", "Jobs", "Schedules", "Settings"):
            link = page.get_by_role("navigation", name="Main").get_by_role("link", name=screen)
            link.click()
            expect(link).to_have_attribute("aria-current", "page")
            expect(page.get_by_role("heading", level=1).first).to_be_visible()
            overflow = page.evaluate("document.documentElement.scrollWidth - window.innerWidth")
            assert overflow <= 0, f"{screen} scrolls sideways by {overflow}px on a {name}"
            page.screenshot(path=str(tmp_path / f"{name}-{screen.lower()}.png"), full_page=True)
        sign_out = page.get_by_role("button", name="Sign out")
        box = sign_out.bounding_box()
        assert box and box["x"] + box["width"] <= size["width"], f"Sign out is off the {name} screen"
        assert box["height"] >= 36, "touch targets stay finger-sized"

    # Empty and unavailable states say so, rather than showing nothing.
    page.get_by_role("link", name="Agenda").click()
    expect(page.get_by_text("Nothing on your calendar")).to_be_visible()
    expect(page.get_by_role("button", name="Connect Google")).to_be_visible()
    page.get_by_role("link", name="Settings").click()
    expect(page.get_by_role("list", name="Devices")).to_be_attached()
    expect(page.get_by_text("No devices yet.")).to_be_visible()


def test_signing_in_and_adding_a_task_with_the_keyboard_alone(browser_page, web):
    email = f"keys-{uuid.uuid4().hex[:8]}@example.com"
    create_user(email)
    page = browser_page
    page.goto(f"{web.url}/app/")
    expect(page.get_by_label("Email")).to_be_visible()  # past "Opening…"
    page.keyboard.press("Tab")
    expect(page.get_by_label("Email")).to_be_focused()
    page.keyboard.type(email)
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")  # the form's default button: Sign in
    expect(page.get_by_role("button", name="Sign out")).to_be_visible()

    page.get_by_label("Quick add").focus()
    page.keyboard.type("renew passport next monday")
    page.keyboard.press("Enter")
    expect(page.get_by_role("list", name="Tasks").get_by_role("listitem")).to_have_count(1)
    checkbox = page.get_by_role("checkbox", name="Done: renew passport")
    for _ in range(10):  # on through the filters into the list
        page.keyboard.press("Tab")
        if checkbox.evaluate("element => element === document.activeElement"):
            break
    expect(checkbox).to_be_focused()
    page.keyboard.press("Space")
    expect(page.get_by_role("list", name="Tasks").get_by_role("listitem")).to_have_count(0)


def test_a_weekly_task_shows_its_rule_in_words_and_completing_it_moves_it_past_the_dst_change(browser_page, web):
    from zoneinfo import ZoneInfo

    from shared.models import Task, User
    from tests.shared.test_repeat import transitions

    berlin = ZoneInfo("Europe/Berlin")  # the browser's zone, so the user's
    change, _ = transitions(berlin, since=datetime.now(timezone.utc))[0]
    monday = (change - timedelta(days=7)).astimezone(berlin).date()
    monday -= timedelta(days=monday.weekday())
    page = browser_page
    email = sign_up(page, web.url)
    page.get_by_label("Quick add").fill("water plants")
    page.get_by_role("button", name="Add").click()
    item = page.get_by_role("list", name="Tasks").get_by_role("listitem").filter(has_text="water plants")

    item.get_by_role("button", name="Edit due date of water plants").click()
    item.get_by_label("Due date").fill(f"{monday.isoformat()}T09:00")
    item.get_by_role("button", name="Save").click()
    expect(item.locator("time")).to_have_attribute("datetime", re.compile(rf"^{monday.isoformat()}T09:00:00\+0"))
    item.get_by_role("button", name="Edit repeat of water plants").click()
    item.get_by_label("Rule (RRULE)").fill("FREQ=WEEKLY;BYDAY=MO")
    expect(item).to_contain_text("Repeats every week on Monday")
    item.get_by_role("button", name="Save").click()
    expect(item.get_by_label("Repeats every week on Monday")).to_be_visible()
    # Postponed to the minute before the clocks change, then completed in the page.
    before = (change - timedelta(minutes=1)).astimezone(berlin)
    item.get_by_role("button", name="Edit due date of water plants").click()
    item.get_by_label("Due date").fill(before.strftime("%Y-%m-%dT%H:%M"))
    item.get_by_role("button", name="Save").click()
    expect(item.locator("time")).to_have_attribute("datetime", before.isoformat())

    item.get_by_role("checkbox", name="Done: water plants").click()  # stays unchecked: it moves on

    following = before.date() + timedelta(days=(7 - before.weekday()) % 7 or 7)
    after_offset = change.astimezone(berlin).isoformat()[-6:]
    expect(item.locator("time")).to_have_attribute("datetime", f"{following.isoformat()}T09:00:00{after_offset}")
    expect(page.get_by_role("checkbox", name="Done: water plants")).not_to_be_checked()
    with db.session_scope() as session:
        user = session.scalar(select(User).where(User.email == email))
        assert user.locale == "en-GB"  # the browser's language, sent at registration
        task = session.scalar(select(Task).where(Task.user_id == user.id))
        assert (task.repeat, task.done) == ("FREQ=WEEKLY;BYDAY=MO", False)

    page.goto(f"{web.url}/app/settings")
    language = page.get_by_label("Language and date order")
    expect(language).to_have_value("en-GB")
    language.select_option("de-DE")
    profile = language.locator("xpath=ancestor::form")
    profile.get_by_role("button", name="Save").click()
    expect(profile.get_by_role("status")).to_have_text("Saved.")
    with db.session_scope() as session:
        assert session.scalar(select(User.locale).where(User.email == email)) == "de-DE"


def test_the_page_is_served_with_a_csp_that_allows_only_its_own_origin(web):
    page = requests.get(f"{web.url}/app/", timeout=10)
    assert page.status_code == 200 and "text/html" in page.headers["Content-Type"]
    csp = page.headers["Content-Security-Policy"]
    assert "default-src 'self'" in csp and "script-src 'self'" in csp and "unsafe-inline" not in csp
    for asset in re.findall(r'(?:src|href)="(/app/assets/[^"]+)"', page.text):
        answer = requests.get(f"{web.url}{asset}", timeout=10)
        assert answer.status_code == 200 and "immutable" in answer.headers["Cache-Control"], asset
    assert requests.get(f"{web.url}/app/admin", timeout=10).text == page.text  # the client's own route


@pytest.fixture
def google_web(worker, web):
    """The API and a worker pointed at the fake Google, the web client's page a return URL.
    The module's worker (Google at a closed port) is paused meanwhile, or it could take the sync."""
    from tests.fakes.google_server import FakeGoogle

    fake = FakeGoogle().start()
    server = ServerProcess(env={**fake.env(), "ENCRYPTION_KEYS": Fernet.generate_key().decode(),
                                "OAUTHLIB_INSECURE_TRANSPORT": "1"})  # the fake speaks plain HTTP
    server.env.update(GOOGLE_REDIRECT_URI=f"{server.url}/v1/integrations/google/callback",
                      OAUTH_RETURN_URLS=f"{server.url}/app/google")
    with worker.paused(), web.worker.paused():
        own = WorkerProcess(env=server.env).start()
        server.start()
        yield server, fake
        server.stop()
        own.stop()
    fake.stop()


def test_connect_google_goes_through_consent_and_back_and_the_agenda_fills(browser_page, google_web):
    """The linking flow as a person clicks it: the page starts it, Google sends the browser to the
    callback, the callback to /app/google with a link code, and the signed-in page completes it."""
    server, fake = google_web
    tomorrow = datetime.now(timezone.utc).replace(hour=10, minute=0, second=0, microsecond=0) + timedelta(days=1)
    fake.add_event("Dentist", tomorrow.isoformat(), (tomorrow + timedelta(hours=1)).isoformat())
    # The first sync lands after the agenda has loaded, as it does for a person who clicks on at once.
    fake.slow("GET", r"/calendar/v3/calendars/primary/events$", 8)
    page = browser_page
    sign_up(page, server.url)

    page.get_by_role("link", name="Agenda").click()
    page.get_by_role("button", name="Connect Google").click()

    expect(page.get_by_role("status")).to_have_text(re.compile("Google is connected"))
    assert urlsplit(page.url).path == "/app/google" and "link_code" not in page.url  # single use, out of history
    assert len(fake.refresh_tokens) == 1 and not fake.revoked()
    page.get_by_role("link", name="Go to your agenda").click()
    fetching = page.get_by_role("status").filter(has_text="Fetching your calendar")
    expect(fetching).to_be_visible()
    expect(page.get_by_text("Dentist")).to_be_visible(timeout=60_000)  # synced by the worker, shown unasked
    expect(fetching).to_have_count(0)
    expect(page.get_by_role("button", name="Connect Google")).to_have_count(0)


class CuttingProxy:
    """A TCP proxy in front of the API that cuts the first event stream after two token events,
    as a phone's connection drops mid-answer. Everything else passes through untouched."""

    def __init__(self, upstream_port: int):
        import socket
        import threading

        self.upstream_port = upstream_port
        self.cut = 0
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        import socket
        import threading

        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.upstream_port))
            state = {"events": False}
            threading.Thread(target=self._pipe, args=(client, upstream, state, False), daemon=True).start()
            threading.Thread(target=self._pipe, args=(upstream, client, state, True), daemon=True).start()

    def _pipe(self, source, target, state, answers: bool):
        seen = 0
        try:
            while data := source.recv(65536):
                if not answers and b"/events HTTP/1.1" in data:
                    state["events"] = True
                target.sendall(data)
                if answers and state["events"] and self.cut == 0:
                    seen += data.count(b"event: token")
                    if seen >= 2:
                        self.cut += 1
                        break
        except OSError:
            pass
        import socket

        for sock in (source, target):
            try:
                sock.shutdown(socket.SHUT_RDWR)  # a FIN now, and the other direction's recv wakes
            except OSError:
                pass
            sock.close()

    def close(self):
        self._listener.close()


SEEN_TEXTS = """() => {
  window.__seen = [];
  new MutationObserver(() => {
    const node = document.querySelector('[data-testid="live-answer"]');
    if (node) window.__seen.push(node.textContent);
  }).observe(document.body, { subtree: true, childList: true, characterData: true });
}"""


def test_the_chat_streams_the_answer_and_a_dropped_connection_shows_it_once(browser_page, web, fake_ai):
    answer = "Here is your week: Monday is quiet, Tuesday has two meetings, and Friday is free for focus work."
    fake_ai.chunk_seconds, fake_ai.chunk_chars = 0.03, 3
    fake_ai.script(fake_ai.reply(answer))
    proxy = CuttingProxy(web.port)
    page = browser_page
    base = f"http://127.0.0.1:{proxy.port}"
    try:
        sign_up(page, base)
        page.get_by_role("link", name="Chat").click()
        page.evaluate(SEEN_TEXTS)
        page.get_by_label("Message").fill("what is my week like?")
        page.get_by_role("button", name="Send").click()
        conversation = page.get_by_role("list", name="Conversation", exact=True)
        expect(conversation.get_by_role("listitem").filter(has_text=answer)).to_have_count(1, timeout=20_000)
        seen = page.evaluate("window.__seen")
    finally:
        fake_ai.chunk_seconds, fake_ai.chunk_chars = 0.0, 4
        proxy.close()
    assert proxy.cut == 1, "the first stream was cut mid-answer"
    assert len(fake_ai.requests) == 1, "the reconnect made no second model call"
    partial = [text for text in seen if text and text != answer]
    assert len(set(partial)) >= 3, "the answer appeared as it was written"
    assert all(answer.startswith(text) for text in seen if text), [t for t in seen if not answer.startswith(t)][:2]


def test_stop_cancels_the_answer(browser_page, web, fake_ai):
    fake_ai.chunk_seconds, fake_ai.chunk_chars = 0.1, 2
    fake_ai.script(fake_ai.reply("A long answer that is written slowly, so there is time to stop it. " * 3))
    page = browser_page
    try:
        sign_up(page, web.url)
        page.get_by_role("link", name="Chat").click()
        page.get_by_label("Message").fill("tell me a long story")
        page.get_by_role("button", name="Send").click()
        expect(page.get_by_test_id("live-answer")).to_contain_text("A long", timeout=15_000)
        page.get_by_role("button", name="Stop").click()
        expect(page.get_by_role("button", name="Send")).to_be_visible(timeout=15_000)
    finally:
        fake_ai.chunk_seconds, fake_ai.chunk_chars = 0.0, 4
    with db.session_scope() as session:
        job = session.scalars(select(Job).where(Job.type == "agent.assistant").order_by(Job.created_at.desc())).first()
        assert job.status == "canceled"
