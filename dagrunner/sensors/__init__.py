"""Public import path for the built-in sensors: `from dagrunner.sensors import FileSensor`."""

from dagrunner.authoring.sensors import (
    BaseSensorOperator,
    FileSensor,
    PythonSensor,
    SensorTimeout,
    TimeDeltaSensor,
)

__all__ = ["BaseSensorOperator", "FileSensor", "PythonSensor", "SensorTimeout", "TimeDeltaSensor"]
