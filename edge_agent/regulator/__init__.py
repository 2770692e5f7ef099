"""Regulator inspection at the edge: a read-only API and HTML view scoped to one jurisdiction.

Every query a regulator makes is itself journaled (`regulator.query`), so the audit of their
own access travels with the journal (and to the cloud, by pseudonym only).
"""
