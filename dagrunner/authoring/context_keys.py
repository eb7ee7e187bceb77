"""The names of the run context a task receives (DESIGN.md section 4, "Template context").

A @task function may declare any of these as parameters without the caller passing them (Airflow makes
them optional), and `determine_kwargs` hands them to callables that ask for them by name.
"""

from __future__ import annotations

KNOWN_CONTEXT_KEYS: frozenset[str] = frozenset(
    {
        "compensation",  # an undo task's: the step it undoes, its result, an idempotency key
        "conf",
        "dag",
        "dag_run",
        "data_interval_end",
        "data_interval_start",
        "ds",
        "ds_nodash",
        "expanded_ti_count",  # a mapped task's number of instances in this run; None when not mapped
        "inlet_events",  # assets (#12): the inlets' events, newest last
        "inlets",
        "logical_date",
        "macros",
        "map_index",
        "map_index_template",
        "outlet_events",  # assets (#12): set an outlet's event extra, add events through an alias
        "outlets",
        "params",
        "prev_data_interval_end_success",
        "prev_data_interval_start_success",
        "prev_end_date_success",
        "prev_start_date_success",
        "run_id",
        "task",
        "task_instance",
        "task_instance_key_str",  # dag_id__task_id__ds_nodash (Airflow's)
        "task_reschedule_count",
        "templates_dict",
        "ti",
        "triggering_asset_events",  # assets (#12): what triggered an asset-triggered run ({} otherwise)
        "ts",
        "ts_nodash",
        "ts_nodash_with_tz",
        "var",
        "conn",  # connections: {{ conn.my_db.host }} (environment first, then the metadata DB)
    }
)
