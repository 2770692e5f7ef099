"""Schemathesis over a live OpenAPI with several bearer tokens, bounded in examples per operation.

Checks: no server error (5xx other than a declared 503) and no status code the schema does not
declare. Every failure of every operation is collected, so one run names them all."""
from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import status_code_conformance


@dataclass
class FuzzReport:
    operations: int = 0
    statuses: Counter[str] = field(default_factory=Counter)  # "METHOD /path status" -> count
    failures: list[str] = field(default_factory=list)

    def count(self, klass: int) -> int:
        return sum(n for k, n in self.statuses.items() if k.rsplit(" ", 1)[1].startswith(str(klass)))


def _cases(op: schemathesis.APIOperation, path_values: dict[str, list[str]]) -> st.SearchStrategy[schemathesis.Case]:
    """Valid and invalid requests; where a route names a known resource, also the real ones
    (so requests get past the 404 to the handler)."""
    strategies = [op.as_strategy(GenerationMode.POSITIVE), op.as_strategy(GenerationMode.NEGATIVE)]
    for name, values in path_values.items():
        if "{" + name + "}" in op.path:
            strategies += [op.as_strategy(GenerationMode.POSITIVE, path_parameters={name: v}) for v in values]
    return st.one_of(strategies)


def _fuzz_operation(op: schemathesis.APIOperation, base_url: str, tokens: dict[str, str], examples: int,
                    path_values: dict[str, list[str]], report: FuzzReport) -> None:
    @settings(max_examples=examples, deadline=None, database=None, derandomize=True,
              suppress_health_check=list(HealthCheck))
    @given(case=_cases(op, path_values), role=st.sampled_from(sorted(tokens)))
    def run(case: schemathesis.Case, role: str) -> None:
        headers = {"Authorization": f"Bearer {tokens[role]}"}
        response = case.call(base_url=base_url, headers=headers, timeout=30)
        report.statuses[f"{op.label} {response.status_code}"] += 1
        try:
            case.validate_response(response, checks=[not_a_server_error, status_code_conformance], headers=headers)
        except BaseExceptionGroup as exc:
            report.failures.append(f"{op.label} as {role}: {str(exc)[:700]}")
            raise

    try:
        run()
    except BaseExceptionGroup:
        pass  # recorded in report.failures (hypothesis re-raises the shrunk example)


def fuzz(base_url: str, tokens: dict[str, str], *, examples: int = 25,
         path_values: dict[str, list[str]] | None = None) -> FuzzReport:
    schema = schemathesis.openapi.from_url(f"{base_url}/openapi.json")
    report = FuzzReport()
    for result in schema.get_all_operations():
        op = result.ok()
        report.operations += 1
        _fuzz_operation(op, base_url, tokens, examples, path_values or {}, report)
    return report
