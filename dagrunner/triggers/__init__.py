"""Message triggers for asset watchers: where a watcher reads the messages that become asset events.

    from dagrunner import Asset, AssetWatcher
    from dagrunner.authoring.triggers import RedisStreamTrigger

    orders = Asset("orders", watchers=[AssetWatcher("orders_stream",
                   trigger=RedisStreamTrigger("redis://127.0.0.1:6379/0", stream="orders"))])

A trigger is configuration only: importing this module (or a DAG file that uses it) imports no broker
client. The triggerer process (`dagrunner triggerer`, a child of `dagrunner scheduler` by default) imports
the DAG file to get the live trigger, callables included, and runs its consumer
(`scheduling.watchers`). `serialize()` describes a trigger for `dags list` / `assets list` without
secrets (the URL's password is masked) and without the callables' code.
"""

from __future__ import annotations

from dagrunner.authoring.triggers import MessageTrigger, RabbitMQTrigger, RedisStreamTrigger

__all__ = ["MessageTrigger", "RabbitMQTrigger", "RedisStreamTrigger"]
