"""Asset producer: its `publish` task updates the asset `warehouse.daily_sales` when it succeeds.

`dagrunner dags trigger asset_producer`, and once `publish` has succeeded `asset_consumer` runs with the
event (docs/events/assets.md).
"""

from dagrunner import DAG, Asset, task

DAILY_SALES = Asset("warehouse.daily_sales")

with DAG(dag_id="asset_producer", schedule=None, tags=["example", "assets"]):

    @task(outlets=[DAILY_SALES])
    def publish(outlet_events, ds=None):
        rows = 42  # a real task would write the table here
        outlet_events[DAILY_SALES].extra = {"rows": rows, "day": ds}
        return rows

    publish()
