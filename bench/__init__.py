"""`make bench`: failover time, probe fan-out, AWS calls per run, cold start and size, cost.

Every figure is measured on the local stand-in (moto's server, real HAProxy and HTTP servers on
loopback) and printed with its target and ratio; nothing here asserts a wall-clock time in a test.
`python -m bench` writes `bench/results/latest.md` and `latest.json`; `--only NAME` runs one.
No traffic leaves 127.0.0.0/8.
"""
