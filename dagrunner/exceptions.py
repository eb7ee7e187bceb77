"""Airflow's exception names, as aliases of ours, so `from airflow.exceptions import ...` ports by changing
the import line only (`from dagrunner.exceptions import ...`, or `from dagrunner import ...`).

| Airflow                 | dagrunner      | raised in a task                                      |
|-------------------------|----------------|-------------------------------------------------------|
| `AirflowException`      | `TaskSignal`   | failed, retried while tries remain                    |
| `AirflowSkipException`  | `SkipTask`     | skipped                                               |
| `AirflowFailException`  | `FailTask`     | failed, no retries                                    |
| `AirflowSensorTimeout`  | `SensorTimeout`| failed, no retries (a sensor that waited too long)    |

As in Airflow, `AirflowException` is the base of the other three, so `except AirflowException` catches them.
One difference: dagrunner's own errors (a bad argument, a template that does not render) are
`DagRunnerError`s, not `AirflowException`s.
"""

from __future__ import annotations

from dagrunner.authoring.sensors.base import SensorTimeout
from dagrunner.errors import FailTask, SkipTask, TaskSignal

AirflowException = TaskSignal
AirflowSkipException = SkipTask
AirflowFailException = FailTask
AirflowSensorTimeout = SensorTimeout

__all__ = ["AirflowException", "AirflowFailException", "AirflowSensorTimeout", "AirflowSkipException"]
