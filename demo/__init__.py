"""`make demo`: the whole system on one machine (a development tool, not shipped in the wheel).

- `demo.children`: the supervised processes (own session, parent-death signal, clean stop);
- `demo.ports`: the ports the demo prefers, and who holds one that is taken;
- `demo.system`: the parts in start order and the calls that make the demo playable;
- `demo.__main__`: the command line (`python -m demo`).
"""
