"""Sensors: tasks that wait for a condition (see base.py for how waiting is declared)."""

from dagrunner.authoring.sensors.base import BaseSensorOperator, PokeReturnValue, SensorTimeout, run_poke_loop
from dagrunner.authoring.sensors.bash import BashSensor
from dagrunner.authoring.sensors.filesystem import FileSensor
from dagrunner.authoring.sensors.python import PythonSensor
from dagrunner.authoring.sensors.time_delta import TimeDeltaSensor

__all__ = [
    "BaseSensorOperator",
    "BashSensor",
    "FileSensor",
    "PokeReturnValue",
    "PythonSensor",
    "SensorTimeout",
    "TimeDeltaSensor",
    "run_poke_loop",
]
