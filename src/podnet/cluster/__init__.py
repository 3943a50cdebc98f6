"""Orchestration on this machine, the top layer under the CLI: `up`, `down`, `start`/`stop`, the
supervisor, `join`/`leave` for other machines, status, the objects every cluster starts with
(`bootstrap`), the host's routes (`hostnet`), processes and cgroups, and the standalone API server the
tests use. The shared basics (config, naming, layout, TLS, journal) are in podnet.core."""
