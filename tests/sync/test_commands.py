"""Commands in: applied once per id whatever the redelivery; malformed ones never stop the loop."""
from __future__ import annotations

import nats

from contract import sync as S
from edge_agent.sync.service import SyncService
from tests.sync.conftest import PROFILE, edge_config, shutdown, start_casino, until


def applied(c, cmd_id: str) -> int:
    return sum(1 for e in c.store.iter_all() if e["kind"] == S.COMMAND_APPLIED and e["data"]["command_id"] == cmd_id)


async def test_redelivered_commands_apply_once(tmp_path, nats_server):
    cfg = edge_config(tmp_path, nats_server.url)
    c = await start_casino(cfg)
    sync = SyncService(c, cfg, ensure_streams=True)
    await sync.start()
    psn = c.ensure_player("alice", PROFILE)
    await until(lambda: sync.connected, what="connected")

    # The first delivery of cmd-2 is applied but its ack is "lost": the service sees an error
    # after apply_command returned, naks, and the command comes again.
    real = c.apply_command
    calls: dict[str, int] = {}

    async def flaky(cmd):
        out = await real(cmd)
        calls[cmd.id] = calls.get(cmd.id, 0) + 1
        if cmd.id == "cmd-2" and calls[cmd.id] == 1:
            raise ConnectionError("lost after apply")
        return out

    c.apply_command = flaky  # type: ignore[method-assign]

    nc = await nats.connect(nats_server.url)
    js = nc.jetstream()
    subj = S.command_subject("mt-1")
    dep1 = S.DepositCredit(id="cmd-1", ts=0, deposit_id="dep-1", player=psn, amount=1_000, currency="EUR")
    dep2 = S.DepositCredit(id="cmd-2", ts=0, deposit_id="dep-2", player=psn, amount=300, currency="EUR")
    # the same command twice (a cloud retry: no Msg-Id, so the stream stores both copies)
    await js.publish(subj, dep1.model_dump_json().encode())
    await js.publish(subj, dep1.model_dump_json().encode())
    await js.publish(subj, b'{"type": "deposit.credit", "id": "bad"}')  # malformed: terminated
    await js.publish(subj, b"\xff not json")
    await js.publish(subj, dep2.model_dump_json().encode())
    # another command id for a deposit already credited: journaled as applied, credits nothing
    dep1_again = dep1.model_copy(update={"id": "cmd-3"})
    await js.publish(subj, dep1_again.model_dump_json().encode())

    await until(lambda: calls.get("cmd-2", 0) >= 2 and calls.get("cmd-3", 0) >= 1, what="commands consumed")
    await until(lambda: sync.commands_rejected == 2, what="malformed terminated")
    assert c.state.cash(psn) == 1_300
    assert applied(c, "cmd-1") == 1 and applied(c, "cmd-2") == 1 and applied(c, "cmd-3") == 1
    credited = [e for e in c.store.iter_all() if e["kind"] == S.DEPOSIT_CREDITED]
    assert sorted(e["data"]["deposit_id"] for e in credited) == ["dep-1", "dep-2"]

    # Nothing left un-acked on the durable consumer.
    info = await js.consumer_info(S.COMMAND_STREAM, "edge-mt-1")
    assert info.num_pending == 0

    # A restart of the service does not re-apply (the consumer is durable; ids are journaled).
    await sync.stop()
    c.apply_command = real  # type: ignore[method-assign]
    sync2 = SyncService(c, cfg)
    await sync2.start()
    # (published after the new service is up: a pull request of the stopped one may still be
    # open on the server for up to its 2 s expiry, and what it takes waits out ack_wait)
    await js.publish(subj, dep1.model_dump_json().encode())  # a late duplicate
    await until(lambda: sync2.commands_applied == 1, what="late duplicate consumed")
    assert c.state.cash(psn) == 1_300 and applied(c, "cmd-1") == 1
    await nc.close()
    await shutdown(c, sync2)
