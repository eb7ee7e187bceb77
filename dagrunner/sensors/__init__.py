"""Public import path for the built-in sensors: `from dagrunner.sensors import FileSensor`."""

from dagrunner.authoring.sensors import (
    BaseSensorOperator,
    BashSensor,
    FileSensor,
    PokeReturnValue,
    PythonSensor,
    SensorTimeout,
    TimeDeltaSensor,
)

__all__ = [
    "BaseSensorOperator",
    "BashSensor",
    "FileSensor",
    "PokeReturnValue",
    "PythonSensor",
    "SensorTimeout",
    "TimeDeltaSensor",
]
