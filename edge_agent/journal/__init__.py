from edge_agent.journal.store import JournalStore, open_readonly

__all__ = ["JournalStore", "open_readonly"]
