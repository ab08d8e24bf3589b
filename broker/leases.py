"""Background lease reclaim: fails the active jobs whose lease ran out.

Every activation (Dequeue or stream dispatch) gives the job a lease that the worker's heartbeats
extend (RegisterWorker). A worker that died, hangs, or cannot reach the broker stops extending
them; about once per ``settings.lease_check_interval`` every replica fails the expired ones with
Minion's "Worker went away" (retried while attempts remain). Each call is bounded and costs what
expired, so running it on every replica is cheap, and the script makes it idempotent.
"""

from __future__ import annotations

import logging

from broker.rounds import NamespaceRounds

log = logging.getLogger("jobwire.leases")

# Most jobs one reclaim call fails; the next call follows at once while calls come back full.
BATCH = 500


class LeaseReaper(NamespaceRounds):
    """Reclaims expired leases in every namespace any replica has served."""

    name = "leases"
    doing = "reclaiming leases"
    log = log

    def interval(self) -> float:
        return self.settings.lease_check_interval

    async def run_once(self, namespace: str) -> int:
        """Fails every job of `namespace` whose lease has expired; how many."""
        total = 0
        more = True
        while more:
            failed, more = await self.store.reclaim_leases(namespace, BATCH)
            total += failed
        if total:
            log.warning("namespace %s: %d jobs lost their lease (worker went away)", namespace,
                        total)  # fmt: skip
        return total
