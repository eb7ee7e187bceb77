"""Asset watchers: broker messages in, asset events (and the runs they cause) out, exactly once in effect.

    discovery.py   which watchers the DAGs declare; their live triggers, by importing the DAG files here
    messages.py    one delivery -> a JSON object or the reason it cannot be used (pure)
    handler.py     decode, validate, key, record + commit (or dead-letter); the consumer acks only after
    redis_stream.py / rabbitmq.py   one consumer per broker kind; broker clients are imported only there
    host.py        one thread per watcher, reconnecting with backoff, audited connected/disconnected
    replay.py      `events dead-letters replay`: a stored message through the same path

Runs in the triggerer process (`dagrunner triggerer`, by default a child of `dagrunner scheduler`), never
in the scheduler's loop, which stays unaware of brokers.
"""
