"""Names every Redis key and channel of a namespace.

Every key carries one hash tag, ``jobwire:{<namespace>}:``, so each script touches a single Redis
Cluster slot. Scripts receive the prefix as ``KEYS[1]`` and build the keys below from it with the
same suffixes (``broker/scripts/lib/keys.lua`` mirrors this file); nothing else invents key names.

Jobs
  ids:job                 STRING  last job id (INCR); Minion's enqueued_jobs
  job:<id>                HASH    task args attempts created delayed expires finished lax notes
                                  parents priority queue result retried retries started state
                                  worker parked lease pnext (json for args/parents/result;
                                  epoch floats; lease = the current attempt's fencing token;
                                  pnext = byte position in the parents text before which no
                                  parent blocks, where the next dependency check starts)
  notes:<id>              HASH    note key -> JSON text of its value (merged key by key)
  jobs                    ZSET    score=id  every job (list_jobs without filters)
  state:<state>           ZSET    score=id  jobs per state (counts for stats, list filter)
  queue:<queue>           ZSET    score=id  jobs per queue (list filter)
  task:<task>             ZSET    score=id  jobs per task (list filter)
  note:<key>              ZSET    score=id  jobs whose notes have that top-level key
  sq:<state>:<queue>      ZSET    score=id  jobs per state and queue      } list_jobs answers
  st:<state>:<task>       ZSET    score=id  jobs per state and task       } any mix of state,
  qt:<len(q)>:<q>:<t>     ZSET    score=id  jobs per queue and task       } queue and task
  sqt:<state>:<len(q)>:<q>:<t>  ZSET  score=id  per state, queue and task } filters from these
                                  (the length prefix keeps queue and task apart)
  qt_jobs                 HASH    "<len(q)>:<q>:<t>" -> number of jobs of that queue and task
                                  (only pairs holding jobs)
  queue_tasks:<queue>     SET     tasks with jobs in that queue
  task_queues:<task>      SET     queues with jobs of that task
  live_queues / live_tasks  SET   queues / tasks with at least one job
  queues / tasks / notekeys  SET  every queue, task and note key ever used (reset walks them)
  ready:<len(q)>:<q>:<t>  ZSET    score=-priority member=%020d id: runnable inactive jobs of
                                  one queue and task, so ZRANGE 0 0 is priority DESC, id ASC
  readytasks:<queue>      SET     tasks with a non-empty ready set in that queue
  delayed                 ZSET    score=delayed  inactive jobs not yet moved to a ready set
  expiring                ZSET    score=expires  inactive jobs with an expiry
  inactive_since          ZSET    score=delayed  every inactive job (repair: stuck jobs)
  finished_at             ZSET    score=finished  finished jobs (repair: remove_after)
  children:<id>           SET     ids of jobs listing <id> among their parents
  parked:<id>             SET     ids of ready jobs set aside until job <id> changes state
  parent_expiry           ZSET    score=expires  parents with parked children that may expire
  worker_jobs:<wid>       SET     active job ids of one worker
  busy_workers            HASH    worker id -> number of active jobs (HLEN = active_workers)
  leases                  ZSET    score=lease expiry  every active job (reclaim_leases fails
                                  those not extended in time by their worker's heartbeats)
  history                 HASH    "<hour>:finished" / "<hour>:failed" -> count
Workers
  ids:worker              STRING  last worker id
  worker:<id>             HASH    host pid started notified status stream_epoch
                                  lease_duration (seconds its leases last between heartbeats)
  workers                 ZSET    score=id
  workers_notified        ZSET    score=notified (repair: missing_after)
  workers_streaming       ZSET    score=notified, workers that opened a stream (repair:
                                  stream_missing_after, so a dead streaming worker is noticed fast)
  inbox:<id>              LIST    pending remote-control commands, JSON arrays
  inbox                   CHANNEL published with a worker id when its inbox received a command
Locks
  ids:lock                STRING  last lock holder id
  lock:<name>             ZSET    score=expires member=holder id
  locks                   ZSET    score=expires member=holder id (every live holder)
  lock_ids                ZSET    score=id member=holder id (list_locks order)
  lock_names              HASH    holder id -> name
Repair
  kept_parents            ZSET    score=when to look again  old finished parents kept because a
                                  child is not finished (out of finished_at meanwhile)
Schedules
  ids:schedule            STRING  last schedule id
  schedule:<id>           HASH    name cron task args attempts expire lax notes priority queue
                                  created next_run paused last_job last_run (args JSON text;
                                  notes JSON object key -> JSON text of the value, as a job spec
                                  carries them; expire seconds, absent = never; paused "1"/"0";
                                  last_job/last_run absent before the first firing; epoch floats)
  schedules               ZSET    score=id  every schedule (list_schedules; ZCARD = all)
  schedule_names          HASH    name -> id  (names are unique)
  schedules_due           ZSET    score=next_run member=id  unpaused schedules only (dispatch;
                                  ZCARD = stats' schedules)
Coordination
  jobwire:namespaces      SET     every namespace served (one key for all; NAMESPACES_KEY)
  repair_lock             STRING  holder token while one replica repairs (SET NX PX)
  wake                    CHANNEL a job may have become runnable (payload: queue, or "" for any)
  slots                   CHANNEL a worker's active job ended (payload: worker id)
  inbox                   CHANNEL a remote-control command reached a worker's inbox (payload: id)
"""

from __future__ import annotations

import re

NAMESPACE_PATTERN = re.compile(r"^[A-Za-z0-9_.-]{1,64}$")

# SET of every namespace a replica has served; outside any hash tag (read by upkeep only).
NAMESPACES_KEY = "jobwire:namespaces"

# Pub/sub channels the scripts publish on, per namespace: "jobwire:{<namespace>}:<kind>".
CHANNEL_KINDS = ("wake", "slots", "inbox")


def channel_patterns() -> list[str]:
    """PSUBSCRIBE patterns matching every namespace's channels."""
    return [f"jobwire:{{*}}:{kind}" for kind in CHANNEL_KINDS]


def parse_channel(channel: str) -> tuple[str, str]:
    """(namespace, kind) of a channel name."""
    head, _, kind = channel.rpartition(":")
    return head[len("jobwire:{") : -1], kind


class Keyspace:
    """Key names of one namespace."""

    def __init__(self, namespace: str) -> None:
        if not NAMESPACE_PATTERN.fullmatch(namespace):
            raise ValueError(f"invalid namespace {namespace!r}")
        self.namespace = namespace
        self.prefix = f"jobwire:{{{namespace}}}:"

    def key(self, suffix: str) -> str:
        """One key of this namespace, e.g. ``key("jobs")``."""
        return self.prefix + suffix

    def job(self, job_id: int) -> str:
        return f"{self.prefix}job:{job_id}"

    def worker(self, worker_id: int) -> str:
        return f"{self.prefix}worker:{worker_id}"

    # Schedules

    def schedule(self, schedule_id: int) -> str:
        return f"{self.prefix}schedule:{schedule_id}"

    # End of Schedules

    @property
    def repair_lock(self) -> str:
        return self.prefix + "repair_lock"

    @property
    def inbox_channel(self) -> str:
        """Published with a worker id whenever broadcast adds to that worker's inbox."""
        return self.prefix + "inbox"
