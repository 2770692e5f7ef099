"""The edge appliance: tables, wallet, responsible gambling, bet journal, media, sync."""
