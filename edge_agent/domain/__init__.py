"""Pure domain of the edge: no I/O here (rounds, fairness glue, ledger, responsible gambling)."""
