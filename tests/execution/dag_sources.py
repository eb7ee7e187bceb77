"""Source text of the DAG files the execution tests write into their tmp dags folders."""

from __future__ import annotations

#: One DAG with a task per behaviour the executor contract covers. Callbacks leave marker files in
#: `marks/` next to the file, named `<kind>-<task_id>-<try_number>`.
CONTRACT_DAG = """
import os
from datetime import timedelta

import pendulum

from dagrunner import DAG, FailTask, SkipTask, task
from dagrunner.operators import BashOperator, BranchPythonOperator, EmptyOperator, PythonOperator

MARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "marks")


def mark(kind):
    def callback(context):
        ti = context["ti"]
        with open(os.path.join(MARKS, f"{kind}-{ti.task_id}-{ti.try_number}"), "w") as handle:
            handle.write(str(context.get("exception", "")))
    return callback


def exploding_callback(context):
    raise RuntimeError("the callback exploded")


def produce(ti):
    ti.xcom_push("extra", [1, 2])
    print("producing rows")
    return {"rows": 3}


def boom():
    print("about to fail")
    raise ValueError("boom from the task")


def skip_me():
    assert os.path.exists(os.path.join(MARKS, "execute-skipper-1")), "on_execute_callback runs before the task"
    raise SkipTask("nothing to do today")


def give_up():
    raise FailTask("this cannot work, do not retry")


def not_json():
    return object()


with DAG("contract", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    ok = PythonOperator(
        task_id="ok", python_callable=produce, on_success_callback=[mark("success"), exploding_callback]
    )
    failing = PythonOperator(task_id="failing", python_callable=boom, on_failure_callback=mark("failure"))
    flaky = PythonOperator(
        task_id="flaky",
        python_callable=boom,
        retries=2,
        retry_delay=timedelta(seconds=30),
        on_retry_callback=mark("retry"),
        on_failure_callback=mark("failure"),
    )
    backoff = PythonOperator(
        task_id="backoff", python_callable=boom, retries=3, retry_delay=timedelta(seconds=10),
        retry_exponential_backoff=True, max_retry_delay=timedelta(seconds=25),
    )
    skipper = PythonOperator(
        task_id="skipper", python_callable=skip_me, on_execute_callback=mark("execute"),
        on_skipped_callback=[exploding_callback, mark("skipped")], on_success_callback=mark("success"),
        on_failure_callback=mark("failure"),
    )
    fail_fast = PythonOperator(task_id="fail_fast", python_callable=give_up, retries=3)
    bad_xcom = PythonOperator(task_id="bad_xcom", python_callable=not_json)
    templated = BashOperator(
        task_id="templated", bash_command="echo ds={{ ds }} nodash={{ ds_nodash }} run={{ run_id }} p={{ params.size }}",
        params={"size": "big"},
    )

    branch = BranchPythonOperator(task_id="branch", python_callable=lambda: "left")
    left = EmptyOperator(task_id="left")
    right = EmptyOperator(task_id="right")
    after_right = EmptyOperator(task_id="after_right")
    branch >> [left, right]
    right >> after_right

    @task
    def consume(value, ds=None):
        print("consuming", value, "for", ds)
        return value["rows"] * 2

    consume(ok.output)
"""

CONTRACT_TASK_IDS = [
    "ok",
    "failing",
    "flaky",
    "backoff",
    "skipper",
    "fail_fast",
    "bad_xcom",
    "templated",
    "branch",
    "left",
    "right",
    "after_right",
    "consume",
]


#: Tasks that misbehave at the process level: only the local executor survives them.
PROCESS_DAG = """
import os
import signal
import subprocess
import sys
import time
from datetime import timedelta

import pendulum

from dagrunner import DAG
from dagrunner.operators import PythonOperator

MARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)), "marks")
STATE = {"count": 0}
HOARD = []


def exit_hard():
    print("about to os._exit")
    os._exit(7)


def segfault():
    print("about to segfault")
    os.kill(os.getpid(), signal.SIGSEGV)


def sleep_in_python():
    subprocess.Popen(["sleep", "987654"])
    time.sleep(1000)


def sleep_in_c():
    os.system("sleep 987655")


def shout():
    chunk = "x" * 1023 + "\\n"
    for _ in range(50 * 1024):
        sys.stdout.write(chunk)
    os.write(1, b"raw bytes at the end\\n")
    return "done"


def block():
    # written aside and renamed: a test that sees the file must never read it half-written
    with open(os.path.join(MARKS, "blocker.pid.tmp"), "w") as handle:
        handle.write(str(os.getpid()))
    os.replace(os.path.join(MARKS, "blocker.pid.tmp"), os.path.join(MARKS, "blocker.pid"))
    time.sleep(120)


def pollute():
    STATE["count"] += 1
    HOARD.append(b"x" * (200 * 1024 * 1024))
    return STATE["count"]


def inspect():
    return {"count": STATE["count"], "hoard": len(HOARD), "pid": os.getpid()}


def touch():
    open(os.path.join(MARKS, "touched"), "w").close()


with DAG("process", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):
    PythonOperator(task_id="exit_hard", python_callable=exit_hard)
    PythonOperator(task_id="segfault", python_callable=segfault)
    PythonOperator(task_id="sleep_in_python", python_callable=sleep_in_python, execution_timeout=timedelta(seconds=1))
    PythonOperator(task_id="sleep_in_c", python_callable=sleep_in_c, execution_timeout=timedelta(seconds=1))
    PythonOperator(task_id="shout", python_callable=shout)
    PythonOperator(task_id="block", python_callable=block, retries=1)
    PythonOperator(task_id="pollute", python_callable=pollute)
    PythonOperator(task_id="inspect", python_callable=inspect)
    PythonOperator(task_id="touch", python_callable=touch)
"""

PROCESS_TASK_IDS = [
    "exit_hard",
    "segfault",
    "sleep_in_python",
    "sleep_in_c",
    "shout",
    "block",
    "pollute",
    "inspect",
    "touch",
]


#: Dynamic task mapping: literal, XCom and cross-product inputs, and a consumer of a mapped task.
MAPPED_DAG = """
import pendulum

from dagrunner import DAG, task
from dagrunner.operators import BashOperator

with DAG("mapped", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC")):

    @task
    def double(x, map_index=None):
        return {"x": x * 2, "index": map_index}

    literal = double.expand(x=[1, 2, 3])

    @task
    def numbers():
        return [5, 6]

    double.override(task_id="double_xcom").expand(x=numbers())

    @task
    def texts():
        return ["{{ ds }}", "plain"]

    @task
    def echo(text):
        return text

    echo.expand(text=texts())

    @task
    def total(values):
        return sum(v["x"] for v in values)

    total(literal)

    @task
    def pair(a, b):
        return f"{a}-{b}"

    pair.expand(a=["p", "q"], b=[1, 2, 3])

    BashOperator.partial(task_id="say").expand(bash_command=["echo first", "echo second {{ ds }}"])
"""

MAPPED_TASK_IDS = ["double", "numbers", "double_xcom", "texts", "echo", "total", "pair", "say"]


#: Context, variables and timeouts seen through a whole try.
EXTRAS_DAG = """
import time
from datetime import timedelta

import pendulum

from dagrunner import DAG
from dagrunner.operators import PythonOperator


def show(var, ds, ts_nodash_with_tz, params, ti, prev_start_date_success):
    print("secret is", var.value.get("db_password"))
    print("plain is", var.value.get("region", "none"))
    print("ds", ds, ts_nodash_with_tz, params, ti.try_number, ti.max_tries, prev_start_date_success)
    return {"ds": ds, "params": params, "prev": str(prev_start_date_success)}


def slow():
    time.sleep(30)


with DAG("extras", schedule=None, start_date=pendulum.datetime(2026, 1, 1, tz="UTC"), params={"size": 1}):
    PythonOperator(task_id="show", python_callable=show)
    PythonOperator(task_id="slow", python_callable=slow, execution_timeout=timedelta(seconds=0.5), retries=1)
"""
