"""Data lifetime: how long a person's file is kept, the notice before it is anonymised, the
anonymisation itself, the purge of logs, and the person's rights (export, rectify, erase).

Why its own concept package: it reads every table a person appears in and must stay the one
place that knows what "anonymised" means, so the daily run and an erasure on request do
exactly the same thing. It sits beside ``deadlines`` in the engine's layers: it builds on
the outbox (notices), reporting (snapshots written before anything is anonymised) and the
store, and nothing below imports it.
"""
