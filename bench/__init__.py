"""Benchmarks: whole processes against real components, compared with a baseline run alongside.

Each `bench/bench_<topic>.py` defines `cases(stack, workdir, quick) -> list[Case]`, starting
whatever real components it needs on `stack` (closed after the run). A module without
`cases` is run as a script whose JSON lines on stdout are reported as figures.
`python -m bench` (or `make bench`) runs them all and prints one table.
"""
