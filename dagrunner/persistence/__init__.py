"""The metadata database: engine and sessions (`engine`), tables (`models`, `types`), schema
management (`schema`, `migrations/`), the state-change gate with its audit trail (`audit`), and named
read queries (`queries`). Import the submodule you need; this package imports nothing on its own.
"""
