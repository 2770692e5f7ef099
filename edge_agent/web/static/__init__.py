# Not code: makes the static files package data of `edge_agent.web.static` (pyproject package-data).
