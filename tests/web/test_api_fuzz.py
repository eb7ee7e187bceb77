"""A property-based fuzz of the whole REST API from its own OpenAPI document (schemathesis 4).

Every operation the app serves at the time the test runs (the schema is read from the running app, so a
router added later is fuzzed too) gets generated requests, valid ones and invalid ones (wrong types, values
out of bounds, NUL characters, unknown ids), sent through the whole ASGI app with an admin's bearer token.
No response may be a 5xx; a response whose status the document describes must match its schema, and its
content type must be the documented one. The database is seeded first (a parsed DAG, a run, a pool, an
asset event, a dead letter) so lists have rows and the serialization of real records is checked too.

SQLite only (the same code runs on PostgreSQL in the per-resource tests); Hypothesis is derandomized so a
failure reproduces, and the examples per operation are few to keep it near half a minute.

Each operation gets three sources of cases: valid requests, invalid ones (schemathesis' negative mode), and
valid ones whose path parameters are the seeded ids (so a detail or a write reaches real rows instead of a
404). The operations are walked by hand with Hypothesis' `@given` rather than through
`schemathesis.pytest.from_fixture`, whose lazy loader fails on pytest 9.2 (it sets `Function._nodeid`, which
pytest 9.2 no longer has); every operation is tried and all failures are reported together.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from watcher_helpers import Names

from dagrunner.clock import utcnow
from dagrunner.persistence import dead_letters
from dagrunner.persistence.engine import session_scope
from dagrunner.scheduling.operations import trigger_run

from .conftest import WebProject

pytestmark = [pytest.mark.slow, pytest.mark.only_db("sqlite")]

#: Examples per operation (Hypothesis `max_examples`): 40 operations x 15 take ~20 s here (150 each: ~3 min).
EXAMPLES = 15
CHECKS = [not_a_server_error, response_schema_conformance, content_type_conformance]

SMALL_DAG = """
import pendulum
from dagrunner import DAG, task

with DAG("fuzzed", schedule="@daily", start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), catchup=False,
         params={"size": 3}, tags=["fuzz"]):
    @task
    def first():
        return 1

    @task
    def second(x):
        return x

    second(first())
"""


@dataclass
class Seeded:
    web: WebProject
    #: Path parameter name -> the id of a seeded row.
    ids: dict[str, Any]


@pytest.fixture
def seeded(web: WebProject) -> Iterator[Seeded]:
    """The web project with a DAG, a run of it, a pool, an asset event and a dead letter in its DB."""
    names = Names()
    names.dag_file(web.dags)
    web.dag_file("fuzzed.py", SMALL_DAG)
    bag = web.parse()
    assert not bag.failures, bag.failures
    with session_scope(web.engine) as session:
        trigger_run(session, bag.dags["fuzzed"], actor="test", now=utcnow(), run_id="seeded_run")
        letter = dead_letters.Letter(f"redis_{names.suffix}", names.asset, "redis://127.0.0.1:6379/0", "stream s",
                                     "1-0", b'{"order_id": 1}', {"token": "t"}, "rejected", 1)  # fmt: skip
        letter_id = dead_letters.add(session, letter, actor="test", when=utcnow())
    admin = web.client("admin")
    assert admin.put("/api/v1/pools/fuzz_pool", json={"slots": 2}).status_code == 201
    assert admin.post(f"/api/v1/assets/{names.asset}/events", json={"extra": {"n": 1}}).status_code == 201
    ids = {"dag_id": "fuzzed", "run_id": "seeded_run", "task_id": "first", "name": "fuzz_pool",
           "dead_letter_id": letter_id}  # fmt: skip
    yield Seeded(web, ids)


def _strategy(operation: Any, seeded: dict[str, Any]) -> st.SearchStrategy[Any]:
    """Valid cases, invalid ones, and valid ones aimed at the seeded rows (when the path names any)."""
    sources = [operation.as_strategy(GenerationMode.POSITIVE), operation.as_strategy(GenerationMode.NEGATIVE)]
    known = {p.name: seeded[p.name] for p in operation.path_parameters if p.name in seeded}
    if known:
        sources.append(operation.as_strategy(GenerationMode.POSITIVE, path_parameters=known))
    return st.one_of(sources)


def _fuzz(operation: Any, seeded: dict[str, Any], bearer: dict[str, str]) -> None:
    @settings(max_examples=EXAMPLES, derandomize=True, deadline=None, database=None,
              suppress_health_check=list(HealthCheck))  # fmt: skip
    @given(case=_strategy(operation, seeded))
    def check(case: schemathesis.Case) -> None:
        response = case.call(headers=bearer)
        case.validate_response(response, checks=CHECKS, headers=bearer)

    check()


def test_no_input_makes_the_api_fail(seeded: Seeded) -> None:
    web = seeded.web
    bearer = {"Authorization": f"Bearer {web.token(web.user('admin', 'fuzzer'))}"}
    schema = schemathesis.openapi.from_asgi("/api/v1/openapi.json", web.app, headers=bearer)
    failures, tried = [], []
    for result in schema.get_all_operations():
        operation = result.ok()
        tried.append(operation.label)
        try:
            _fuzz(operation, seeded.ids, bearer)
        except Exception as exc:  # every operation is tried; each failure is reported with its operation
            # An exception in the app reaches here as itself (the ASGI client re-raises it): keep its traceback.
            failures.append(f"{operation.label}: " + "".join(traceback.format_exception(exc))[-3000:])
    paths = set(web.client("viewer").get("/api/v1/openapi.json").json()["paths"])
    assert {label.split(" ", 1)[1] for label in tried} == paths  # every route the app serves was fuzzed
    assert not failures, "\n\n".join(failures)
