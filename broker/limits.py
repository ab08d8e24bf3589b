"""Every bound the broker puts on a request, in one place.

Each bound keeps one request's work and memory small and predictable; exceeding one is
INVALID_ARGUMENT naming the field. The proto comment of each field states its bound, so keep the
two in step. Sizes of args, notes and results are a setting (JOBWIRE_MAX_PAYLOAD), not here.
"""

from __future__ import annotations

# Ids (jobs, workers, schedules, parents, `before`, id filters) are 1..2^53-1: exact as a
# JavaScript number and as a Lua number (a double) inside the scripts.
MAX_ID = 2**53 - 1
# A worker id chosen by RegisterWorker moves the namespace's id sequence on; chosen ids stop at
# 2^52 so the sequence keeps 2^52 new ids below MAX_ID whatever a client chooses.
MAX_CHOSEN_WORKER_ID = 2**52

# Names of tasks, queues, locks, schedules, commands and note keys, and a worker's host: characters.
MAX_NAME = 256
# A cron expression: characters.
MAX_CRON = 256

# Durations (delay, expire, lease duration: 0 to this; a lock's duration: this either way of zero,
# since Minion takes a duration <= 0 as "only check"): seconds. 100 years keeps every time the
# scripts compute from Redis' clock a valid Timestamp and exact to the microsecond as a double.
MAX_DURATION = 100 * 365 * 86400
# Dequeue's long-poll wait: seconds (0 to this).
MAX_WAIT = 3600

# Pages: rows per page (default and most), and rows skipped (page deeper with `before`).
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_OFFSET = 1_000_000

# Counts in one request. Duplicates are dropped before counting.
MAX_IDS = 20_000  # ids in Broadcast and in `running` lists
MAX_FILTER_IDS = 1000  # ids of a list's id filter (a page holds at most MAX_LIMIT rows anyway)
MAX_PARENTS = 1000  # parents of one job
MAX_NOTE_KEYS = 100  # top-level keys of one notes object or merge
MAX_QUEUES = 100  # queues a Dequeue or Subscribe takes jobs from
MAX_TASKS = 1000  # tasks a Dequeue or Subscribe runs, and task limits of a Subscribe
MAX_FILTER_VALUES = 20  # values of one string filter (tasks, queues, notes, names) of a list
MAX_BATCH = 10_000  # jobs of a BatchEnqueue, completions of a CompleteJobs
MAX_DEQUEUE = 1000  # jobs one Dequeue hands out
MAX_CONCURRENCY = 10_000  # Subscribe concurrency, spare and each task limit
# Picking a job looks at one ready set per (queue, task) pair asked for, once per job taken.
MAX_READY_SETS = 1000  # queues x tasks of a Dequeue or Subscribe (tasks empty counts as 1)
MAX_PICK_WORK = 20_000  # count x queues x tasks of a Dequeue: a larger count hands out fewer

# Bytes of JSON text.
MAX_BATCH_BYTES = 16 * 1024 * 1024  # args and notes of all jobs of a BatchEnqueue together
MAX_COMMAND_BYTES = 64 * 1024  # a Broadcast's args (copied into every worker's inbox)
MAX_STATUS_BYTES = 64 * 1024  # a worker's status
