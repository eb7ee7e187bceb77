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
from dagrunner.authoring.sensors.date_time import DateTimeSensor
from dagrunner.authoring.sensors.external_task import ExternalTaskMarker, ExternalTaskSensor
from dagrunner.authoring.sensors.time_sensor import TimeSensor

__all__ = [
    "BaseSensorOperator",
    "BashSensor",
    "FileSensor",
    "PokeReturnValue",
    "PythonSensor",
    "SensorTimeout",
    "TimeDeltaSensor",
    "ExternalTaskSensor",
    "DateTimeSensor",
    "TimeSensor",
    "ExternalTaskMarker",
]
