"""The web UI in a real browser against a real server and scheduler: what a person does, start to end.

Waits use Playwright's `expect` with a timeout (it polls the page): nothing here sleeps, and nothing reloads
the page while a run progresses, so a state that changes on screen proves the page updated itself.
"""

from __future__ import annotations

import json
import re
from typing import Any

import pytest
from integration import procs

from .conftest import UiServer, login, screenshot

pytestmark = pytest.mark.slow

EXAMPLE_DAGS = ("bash_templating", "etl_daily_sales", "loan_approval", "taskflow_branching", "asset_producer")
RUN_TIMEOUT = 40_000  # ms: a run of a few tasks takes seconds; CI's loaded machine gets room


def expect(*args: Any, **kwargs: Any) -> Any:
    from playwright.sync_api import expect as playwright_expect

    return playwright_expect(*args, **kwargs)


def mark_no_reload(page: Any) -> None:
    """A flag on the window: it survives only as long as the page is not reloaded."""
    page.evaluate("window.__dagrunnerNoReload = true")


def assert_not_reloaded(page: Any) -> None:
    assert page.evaluate("window.__dagrunnerNoReload === true"), "the page was reloaded: the UI should update itself"


def assert_no_csp_violations(page: Any) -> None:
    assert not page.errors, f"errors in the page (script errors or Content-Security-Policy violations): {page.errors}"


def signed_in(page: Any, server: UiServer, role: str) -> None:
    login(page, server.users[role])
    expect(page.locator("#who-name")).to_have_text(server.users[role])
    expect(page.locator("#who-role")).to_have_text(role)


def trigger_from_form(page: Any, dag_id: str, **fields: str) -> str:
    """Open the DAG's trigger form, fill `fields` (param name -> text), submit; returns the new run's id."""
    page.goto(f"/#/dags/{dag_id}/trigger")
    for name, value in fields.items():
        page.fill(f"#param-{name}", value)
    page.click("[data-testid=trigger-submit]")
    expect(page.locator("#flash")).to_contain_text("Triggered ")
    run_id = page.locator("#flash").inner_text().removeprefix("Triggered ").strip()
    expect(page).to_have_url(re.compile(f"#/dags/{dag_id}/grid$"))
    return run_id


def test_a_wrong_password_shows_the_apis_error(page: Any, ui_server: UiServer) -> None:
    login(page, ui_server.users["admin"], "not the password")
    expect(page.locator(".login-error .error")).to_contain_text("wrong username or password")
    expect(page.locator("#top")).to_be_hidden()
    screenshot(page, ui_server, "login")
    assert_no_csp_violations(page)


def test_trigger_from_the_form_and_watch_the_run_turn_green(page: Any, ui_server: UiServer) -> None:
    signed_in(page, ui_server, "admin")
    dags = page.locator("table.dags")
    for dag_id in EXAMPLE_DAGS:
        expect(dags.locator(f'tr[data-dag-id="{dag_id}"]')).to_be_visible(timeout=RUN_TIMEOUT)
    assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"), "the DAG list scrolls sideways"
    screenshot(page, ui_server, "dags")

    page.locator('tr[data-dag-id="taskflow_branching"] a', has_text="Trigger").click()
    expect(page.locator("#param-threshold")).to_have_value("100")
    page.fill("#param-threshold", "150")
    screenshot(page, ui_server, "trigger")
    page.click("[data-testid=trigger-submit]")
    expect(page.locator("#flash")).to_contain_text("Triggered ")
    run_id = page.locator("#flash").inner_text().removeprefix("Triggered ").strip()
    expect(page).to_have_url(re.compile("#/dags/taskflow_branching/grid$"))

    mark_no_reload(page)
    run_bar = page.locator(f'.run-bar[data-run-id="{run_id}"]')
    expect(run_bar).to_have_attribute("data-state", "success", timeout=RUN_TIMEOUT)
    expect(page.locator(f'.cell[data-run-id="{run_id}"][data-task-id="done"]')).to_have_attribute(
        "data-state", "success"
    )
    assert_not_reloaded(page)
    screenshot(page, ui_server, "grid")

    page.locator(".tabs a", has_text="Graph").click()
    page.locator("select[aria-label=Run]").select_option(run_id)
    expect(page.locator('g.node[data-task-id="done"]')).to_have_attribute("data-state", "success")
    expect(page.locator('g.node[data-task-id="all_good"]')).to_have_attribute(
        "data-state", re.compile("success|skipped")
    )
    screenshot(page, ui_server, "graph")

    page.goto(f"/#/dags/taskflow_branching/runs/{run_id}")
    expect(page.locator("h1 .badge")).to_have_text("success")
    expect(page.locator("pre.code")).to_contain_text('"threshold": 150')
    screenshot(page, ui_server, "run")

    page.goto("/#/audit")
    page.fill("input[name=dag_id]", "taskflow_branching")
    page.press("input[name=dag_id]", "Enter")
    expect(page.locator("table.audit")).to_contain_text(f"api:{ui_server.users['admin']}")
    screenshot(page, ui_server, "audit")
    assert_no_csp_violations(page)


def test_a_failed_tasks_log_then_clear_it_and_it_runs_again(page: Any, ui_server: UiServer) -> None:
    signed_in(page, ui_server, "operator")
    run_id = trigger_from_form(page, "ui_flaky")
    mark_no_reload(page)
    cell = page.locator(f'.cell[data-run-id="{run_id}"][data-task-id="load"]')
    expect(cell).to_have_attribute("data-state", "failed", timeout=RUN_TIMEOUT)
    assert_not_reloaded(page)
    cell.click()

    expect(page.locator("h1 .badge")).to_have_text("failed")
    log = page.locator("[data-testid=log]")
    expect(log).to_contain_text("ui-flaky-boom: no gate file")
    expect(page.locator(".log-status")).to_have_text("complete")
    screenshot(page, ui_server, "task-log", full_page=True)

    (ui_server.root / "GATE").touch()  # the next try succeeds
    mark_no_reload(page)
    page.click("[data-testid=clear-task]")
    expect(page.locator("#flash")).to_contain_text("Cleared load")
    expect(page.locator("h1 .badge")).to_have_text("success", timeout=RUN_TIMEOUT)
    expect(page.locator('[data-testid=log][data-try="2"]')).to_contain_text("loaded 3 rows")
    assert_not_reloaded(page)

    page.goto(f"/#/dags/ui_flaky/runs/{run_id}")
    expect(page.locator("h1 .badge")).to_have_text("success", timeout=RUN_TIMEOUT)
    assert_no_csp_violations(page)


def test_answer_an_approval_in_the_inbox(page: Any, ui_server: UiServer) -> None:
    signed_in(page, ui_server, "operator")
    run_id = trigger_from_form(page, "loan_approval", applicant="Grace Hopper")
    page.goto("/#/approvals")
    review = page.locator(f'article.approval[data-run-id="{run_id}"][data-task-id="manager_review"]')
    expect(review).to_be_visible(timeout=RUN_TIMEOUT)
    expect(review).to_contain_text("Loan for Grace Hopper")
    screenshot(page, ui_server, "approvals")
    review.locator("textarea").fill("income verified")
    review.locator("[data-testid=approve]").click()
    expect(page.locator("#flash")).to_contain_text("manager_review: approved")

    decision = page.locator(f'article.approval[data-run-id="{run_id}"][data-task-id="final_decision"]')
    expect(decision).to_be_visible(timeout=RUN_TIMEOUT)
    decision.get_by_label("generate_contract").check()
    decision.locator("[data-testid=respond]").click()
    expect(decision).to_have_count(0)

    page.goto(f"/#/dags/loan_approval/runs/{run_id}")
    expect(page.locator("h1 .badge")).to_have_text("success", timeout=RUN_TIMEOUT)
    expect(page.locator('tr[data-task-id="send_rejection"] .badge')).to_have_text("skipped")
    assert_no_csp_violations(page)


def test_a_viewer_sees_no_write_buttons_and_the_api_refuses_its_writes(page: Any, ui_server: UiServer) -> None:
    signed_in(page, ui_server, "viewer")
    expect(page.locator('tr[data-dag-id="ui_flaky"]')).to_be_visible(timeout=RUN_TIMEOUT)
    write_controls = "[data-testid], .switch, a.btn-primary, .btn-danger, .btn-success"
    expect(page.locator("table.dags").locator(write_controls)).to_have_count(0)
    expect(page.locator("table.dags")).not_to_contain_text("Trigger")
    expect(page.locator("nav a", has_text="Users")).to_be_hidden()

    run = procs.run(ui_server.root, ui_server.db_url, "dags", "trigger", "ui_flaky", "--json")
    assert run.returncode == 0, run.stdout + run.stderr
    run_id = json.loads(run.stdout)["run_id"]
    page.goto(f"/#/dags/ui_flaky/runs/{run_id}")
    expect(page.locator("h1 .badge")).to_have_text(re.compile("success|failed"), timeout=RUN_TIMEOUT)
    expect(page.locator("main button")).to_have_count(0)
    page.locator("table tbody tr a").first.click()  # a task instance
    expect(page.locator("[data-testid=log]")).to_be_visible()
    expect(page.locator(".actions")).to_have_count(0)
    page.goto("/#/dags/ui_flaky")
    expect(page.locator(".tabs")).to_be_visible()
    expect(page.locator("[data-testid=trigger-button], .switch")).to_have_count(0)

    csrf = page.evaluate("fetch('/api/v1/auth/me').then(r => r.json()).then(me => me.csrf_token)")
    assert csrf, "a browser session has a CSRF token"
    response = page.request.post("/api/v1/dags/ui_flaky/runs", data={"conf": {}}, headers={"X-CSRF-Token": csrf})
    assert response.status == 403, response.text()
    assert "operator" in response.json()["detail"]
    response = page.request.patch("/api/v1/dags/ui_flaky", data={"is_paused": True}, headers={"X-CSRF-Token": csrf})
    assert response.status == 403, response.text()
    assert_no_csp_violations(page)
