"""The problem ledger (整改台账): problems found, assigned, fixed, verified and closed.

`model` (values), `machine` (the pure state machine), `store` (SQLite + photo files),
`service` (the ledger with alerts, events, time series and audit), `export` (CSV/XLSX),
`demo_seed` (history for `villagehub demo`). See docs/problems.md.
"""
