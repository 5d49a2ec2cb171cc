"""The problem ledger (整改台账): problems found, assigned, fixed, verified and closed.

`model` (values), `machine` (the pure state machine), `errors`, `store` (SQLite + photo
files), `service` (the facade: create, transition, delete, events, audit) over `photos`
(uploads, camera photos, fresh snapshots) and `overdue` (overdue alerts, the `problems`
counts), `export` (CSV/XLSX), `demo_seed` (history for `villagehub demo`). See docs/problems.md.
"""
