"""Asset consumer: runs whenever `warehouse.daily_sales` is updated (by asset_producer, or by hand with
`dagrunner assets emit warehouse.daily_sales --extra '{"rows": 7}'`)."""

from dagrunner import DAG, Asset, task

with DAG(dag_id="asset_consumer", schedule=[Asset("warehouse.daily_sales")], tags=["example", "assets"]):

    @task
    def report(triggering_asset_events):
        for name, events in triggering_asset_events.items():
            for event in events:
                print(f"{name} updated at {event.timestamp} by {event.source_dag_id or 'hand'}: {event.extra}")
        return {name: [e.extra for e in events] for name, events in triggering_asset_events.items()}

    report()
