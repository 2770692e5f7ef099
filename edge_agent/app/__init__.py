"""The edge's application layer: one service per concept, all sharing one `Engine`.

- `engine.py`: the journal port, the state folded from it (state = fold(journal)), events.
- `ports.py`: the storage port (named records and reads; `journal/store.py` is the SQLite adapter).
- `seeds.py`: custody of the tables' seed chains.
- `rounds.py`: the round scheduler (table loops, play phases of games, settlement, voids, feed,
  operator actions, recovery).
- `betting.py`: bet admission, idempotent HTTP bets, bet metrics.
- `cashier.py`: deposits, withdrawals, KYC submissions.
- `players.py`: pseudonyms, registration, sessions, responsible gambling, exclusions.
- `commands.py`: commands from the control plane, applied once.
- `notices.py`: what players and tables are told when a round ends.
- `views.py`: wallet, limits, table and round-proof views.
- `oversight.py`: the journal record of regulator queries.
`edge_agent/casino.py` composes them (`Casino`). Adapters (api/, regulator/, sync/, media/)
call their public methods; commands return once durable.
"""
