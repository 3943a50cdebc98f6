"""The `podnet` command: one `cmd_*` module per area (listed in `main`), output helpers, and the
entry points of the daemons (`controlplane`, `agent`), which wire the pieces of a process together."""
