"""Services: the control plane's use cases over the database, the domain rules and the ports."""
