"""dagrunner: an Airflow-style DAG scheduler. This module exports the public authoring API only."""

__version__ = "0.1.0"
