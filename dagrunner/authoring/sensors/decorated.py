"""The task behind `@task.sensor`: a PythonSensor whose callable is the decorated function."""

from __future__ import annotations

from typing import Any

from dagrunner.authoring.sensors.python import PythonSensor


class DecoratedSensorOperator(PythonSensor):
    """`@task.sensor(poke_interval=..., timeout=..., mode=..., soft_fail=...)`: the function is the poke; it
    returns a bool or a `PokeReturnValue` (whose `xcom_value` becomes the task's return value).

    Every `@task` variant is built with `multiple_outputs`; a sensor pushes one value, never keys to split.
    """

    def __init__(self, *, multiple_outputs: bool = False, **kwargs: Any) -> None:  # noqa: ARG002 - see docstring
        super().__init__(**kwargs)
