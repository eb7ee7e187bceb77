"""FileSensor: wait for a file (or a glob pattern) to exist."""

from __future__ import annotations

import glob
import os
from collections.abc import Mapping
from typing import Any

from dagrunner.authoring.sensors.base import BaseSensorOperator


class FileSensor(BaseSensorOperator):
    """True once `filepath` (a path or glob, templated) matches a file, or a directory holding files."""

    template_fields = ("filepath",)

    def __init__(self, *, filepath: str, recursive: bool = False, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.filepath = self._arg_check.string("filepath", filepath, what="a non-empty path or glob pattern")
        self.recursive = self._arg_check.boolean("recursive", recursive)

    def poke(self, context: Mapping[str, Any]) -> bool:  # noqa: ARG002 - the sensor interface; the path is a field
        for path in glob.glob(self.filepath, recursive=self.recursive):
            if os.path.isfile(path):
                return True
            # A directory counts once something has landed in it (Airflow's rule).
            for _, _, files in os.walk(path):
                if files:
                    return True
        return False
