"""PythonSensor: wait until a callable returns something truthy (or a done PokeReturnValue)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from dagrunner.authoring.operators.python import call_with_context, check_callable_args
from dagrunner.authoring.sensors.base import BaseSensorOperator, PokeReturnValue


class PythonSensor(BaseSensorOperator):
    """Pokes by calling `python_callable` (with context keys by parameter name, like PythonOperator)."""

    template_fields = ("templates_dict", "op_args", "op_kwargs")

    def __init__(
        self,
        *,
        python_callable: Callable[..., Any],
        op_args: Sequence[Any] | None = None,
        op_kwargs: Mapping[str, Any] | None = None,
        templates_dict: Mapping[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.python_callable, self.op_args, self.op_kwargs, self.templates_dict = check_callable_args(
            self._arg_check, python_callable, op_args, op_kwargs, templates_dict
        )

    def poke(self, context: Mapping[str, Any]) -> bool | PokeReturnValue:
        """The callable's truth, or the PokeReturnValue it returned (whose xcom_value is then pushed)."""
        value = call_with_context(self.python_callable, self.op_args, self.op_kwargs, self.templates_dict, context)
        return value if isinstance(value, PokeReturnValue) else bool(value)
