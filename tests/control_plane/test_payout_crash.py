"""No double payout: crash the control plane around the rail call, redeliver withdrawal entries
in any order and any number of times (hypothesis), restart in between."""
from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select

from contract import sync as S
from control_plane.adapters.db.models import commands, withdrawals
from control_plane.adapters.rails import SimulatedBankRail
from control_plane.ports.payout_rail import Payout
from control_plane.runtime import ControlPlane
from tests.control_plane.conftest import EdgeSim, cp_config


class Crash(BaseException):
    """Stands for kill -9: not an Exception, so nothing on the way catches it."""


def crash_at(point: str, once: bool = True):  # type: ignore[no-untyped-def]
    fired: list[str] = []

    def hook(p: str, key: str) -> None:
        if p == point and (not once or not fired):
            fired.append(key)
            raise Crash(f"{p} {key}")
    return hook


def verified(cp: ControlPlane, player: str, edge: EdgeSim) -> None:
    cp.registry.register(edge.edge_id, "MT", "", None)
    cp.applier.apply(edge.edge_id, S.SyncedEntry(**edge.add(S.KYC_REQUESTED, {"player": player, "reference": "r"})))
    cp.kyc.set_status("MT", player, "verified")


def payout_commands(cp: ControlPlane) -> list[str]:
    with cp.engine.connect() as c:
        return list(c.execute(select(commands.c.id).where(commands.c.type == "payout.result")).scalars())


def status(cp: ControlPlane, wid: str) -> str:
    with cp.engine.connect() as c:
        return c.execute(select(withdrawals.c.status).where(withdrawals.c.withdrawal_id == wid)).scalar()


@pytest.mark.parametrize("point", ["before_rail", "after_rail"])
@pytest.mark.parametrize("rail", ["bank", "crypto"])
async def test_crash_mid_payout_then_restart_pays_once(tmp_path: Path, db_url: str, point: str, rail: str) -> None:
    cfg = cp_config(tmp_path, db_url, None, kyc={"vendor": "none"})
    cp = ControlPlane(cfg)
    await cp.start()
    edge = EdgeSim("mt-1")
    verified(cp, "p1", edge)
    cp.applier.apply("mt-1", S.SyncedEntry(**edge.add(S.WITHDRAWAL_REQUESTED, {
        "withdrawal_id": "w1", "player": "p1", "amount": 12_345, "currency": "EUR", "rail": rail})))
    await cp.stop()  # stop the loops: this test drives the processor itself
    await cp.start()
    for t in cp._tasks:
        t.cancel()
    cp.processor.fault = crash_at(point)
    with pytest.raises(Crash):
        while True:
            await cp.processor.run_once()
    assert status(cp, "w1") == "paying"  # the crash left the payout in flight, uncommitted
    await cp.stop()
    cp.close_adapters()

    # A new process on the same database and the same (external) rail books.
    cp2 = ControlPlane(cfg)
    await cp2.start()
    try:
        for t in cp2._tasks:
            t.cancel()
        for _ in range(200):
            await cp2.processor.run_once()
            if status(cp2, "w1") == "paid":
                break
            await asyncio.sleep(0.02)
        assert status(cp2, "w1") == "paid"
        assert cp2.rails[rail].count_payouts("w1") == 1 and cp2.rails[rail].count_payouts() == 1
        assert payout_commands(cp2) == ["payout.result:w1"]
        # Redelivering the request after payment changes nothing.
        cp2.applier.apply("mt-1", S.SyncedEntry(**edge.entries[-1]))
        await cp2.processor.run_once()
        assert cp2.rails[rail].count_payouts() == 1 and payout_commands(cp2) == ["payout.result:w1"]
    finally:
        await cp2.stop()
        cp2.close_adapters()


Step = tuple[str, int]
steps = st.lists(st.one_of(st.tuples(st.just("deliver"), st.integers(0, 3)),
                           st.tuples(st.just("process"), st.just(0)),
                           st.tuples(st.just("crash"), st.integers(0, 1)),
                           st.tuples(st.just("restart"), st.just(0))), min_size=1, max_size=25)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(plan=steps)
def test_any_redelivery_order_with_crashes_pays_each_withdrawal_once(plan: list[Step]) -> None:
    asyncio.run(_run_plan(plan))


async def _run_plan(plan: list[Step]) -> None:
    with tempfile.TemporaryDirectory() as d:
        cfg = cp_config(Path(d), f"sqlite:///{d}/cp.db", None, kyc={"vendor": "none"},
                        rails={"crypto": {"confirmations": 2, "block_interval_s": 0.001}})
        edge = EdgeSim("mt-1")
        cp = ControlPlane(cfg)
        await cp.start()
        for t in cp._tasks:
            t.cancel()
        verified(cp, "p1", edge)
        reqs = [edge.add(S.WITHDRAWAL_REQUESTED, {"withdrawal_id": f"w{i}", "player": "p1", "amount": 1_000 + i,
                                                  "currency": "EUR", "rail": ("bank", "crypto")[i % 2]})
                for i in range(4)]
        delivered: set[int] = set()
        try:
            for op, arg in plan + [("deliver", i) for i in range(4)]:
                if op == "deliver":
                    cp.applier.apply("mt-1", S.SyncedEntry(**reqs[arg]))
                    delivered.add(arg)
                elif op == "process":
                    await asyncio.sleep(0.005)  # crypto confirmations
                    await cp.processor.run_once()
                elif op in ("crash", "restart"):
                    if op == "crash":
                        cp.processor.fault = crash_at(("before_rail", "after_rail")[arg])
                        try:
                            await cp.processor.run_once()
                        except Crash:
                            pass
                    await cp.stop()
                    cp.close_adapters()
                    cp = ControlPlane(cfg)
                    await cp.start()
                    for t in cp._tasks:
                        t.cancel()
            for _ in range(500):  # let the crypto confirmations come in
                await cp.processor.run_once()
                if all(status(cp, f"w{i}") == "paid" for i in range(4)):
                    break
                await asyncio.sleep(0.002)
            bank, crypto = cp.rails["bank"], cp.rails["crypto"]
            for i in range(4):
                assert status(cp, f"w{i}") == "paid"
                assert (bank if i % 2 == 0 else crypto).count_payouts(f"w{i}") == 1
            assert bank.count_payouts() + crypto.count_payouts() == 4
            assert sorted(payout_commands(cp)) == [f"payout.result:w{i}" for i in range(4)]
        finally:
            await cp.stop()
            cp.close_adapters()


async def test_entries_before_registration_wait_for_the_edges_jurisdiction(tmp_path: Path, db_url: str) -> None:
    cp = ControlPlane(cp_config(tmp_path, db_url, None, kyc={"vendor": "none"}))
    await cp.start()
    try:
        for t in cp._tasks:
            t.cancel()
        edge = EdgeSim("nj-1")
        cp.applier.apply("nj-1", S.SyncedEntry(**edge.add(S.KYC_REQUESTED, {"player": "u", "reference": "r"})))
        cp.applier.apply("nj-1", S.SyncedEntry(**edge.add(S.WITHDRAWAL_REQUESTED, {
            "withdrawal_id": "w", "player": "u", "amount": 500, "currency": "USD", "rail": "bank"})))
        await cp.processor.run_once()
        assert status(cp, "w") == "requested"  # whose rules apply is not known yet
        cp.registry.register("nj-1", "NJ", "", None)
        await cp.processor.run_once()
        assert cp.kyc.get("NJ", "u")["status"] == "pending"
        assert status(cp, "w") == "refused"  # NJ rules now: KYC not verified
    finally:
        await cp.stop()
        cp.close_adapters()


class FlakyBank(SimulatedBankRail):
    """A bank whose API times out for one withdrawal twice (after possibly paying: the worst case)."""

    def __init__(self, path: Path) -> None:
        super().__init__(path)
        self.failures = 2

    def payout(self, withdrawal_id: str, player: str, amount: int, currency: str) -> Payout:
        p = super().payout(withdrawal_id, player, amount, currency)
        if withdrawal_id == "w-flaky" and self.failures:
            self.failures -= 1
            raise TimeoutError("bank API timed out")  # the money may have moved; we do not know
        return p


async def test_rail_outage_on_one_payout_does_not_stall_others_nor_pay_twice(tmp_path: Path, db_url: str) -> None:
    bank = FlakyBank(tmp_path / "bank.db")
    cp = ControlPlane(cp_config(tmp_path, db_url, None, kyc={"vendor": "none"}), rails={"bank": bank})
    await cp.start()
    try:
        for t in cp._tasks:
            t.cancel()
        edge = EdgeSim("mt-1")
        verified(cp, "p1", edge)
        for wid in ("w-flaky", "w-ok"):
            cp.applier.apply("mt-1", S.SyncedEntry(**edge.add(S.WITHDRAWAL_REQUESTED, {
                "withdrawal_id": wid, "player": "p1", "amount": 700, "currency": "EUR", "rail": "bank"})))
        await cp.processor.run_once()
        assert status(cp, "w-ok") == "paid" and status(cp, "w-flaky") == "paying"
        for _ in range(3):
            await cp.processor.run_once()
        assert status(cp, "w-flaky") == "paid"
        assert bank.count_payouts("w-flaky") == 1 and bank.count_payouts() == 2
        assert sorted(payout_commands(cp)) == ["payout.result:w-flaky", "payout.result:w-ok"]
        assert cp.metrics.errors.labels("payout")._value.get() == 2
    finally:
        await cp.stop()
        bank.close()
