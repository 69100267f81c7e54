/* The kernels' thread team (pool.c). Not part of the cffi cdef.
 *
 * Why not `#pragma omp parallel`: an idle libgomp worker either spins without yielding (the default,
 * or GOMP_SPINCOUNT), which on a 2-vCPU machine steals the core another process or the Python thread
 * needs, or sleeps at once (OMP_WAIT_POLICY=PASSIVE), and then every parallel region pays a futex
 * wake-up and a sleeping join, which costs small kernels most of their parallel speed-up (figures:
 * benchmarks/results/kernel_choices.md). This team
 * waits in three stages: spin on the job word (pause), then spin calling sched_yield (a busy
 * neighbour gets the core), then sleep on a futex. Back-to-back kernels find the workers awake.
 *
 * Usage: pack a kernel's arguments in a struct and
 *     static void task(void *ctx, int t, int nt) { ... gb_split(n, t, nt, &lo, &hi); ... }
 *     gb_parallel(task, &args, nt);    // slot t = 0 runs on the calling thread
 * gb_parallel runs each slot t = 0 .. nt-1 once, on whichever thread of the team claims it first: the
 * caller runs slot 0, then any slot no worker has claimed yet, so a worker that is slow to wake (a
 * vCPU the hypervisor has halted takes milliseconds) costs the job its parallelism, not a wait. So a
 * task must not wait for another slot (a barrier, or a flag only another slot sets); it may wait for
 * work another slot has claimed (a counter of claimed items done). Tasks that need the nt threads
 * at once, meeting at gb_barrier(), go through gb_parallel_team, whose caller waits for every worker.
 * A call made while the team is busy (another Python thread, or from inside a task) runs inline with
 * nt = 1, so tasks must only use t and nt for their split. Off Linux the team is OpenMP's. */
#pragma once
#include <stdint.h>

typedef void (*gb_task_fn)(void *ctx, int t, int nt);

/* Run task(ctx, t, nt) for t = 0 .. nt-1, each slot on the first thread to claim it (t = 0 on the
 * caller); returns when every t is done. A task must not wait for another slot. */
void gb_parallel(gb_task_fn task, void *ctx, int nt);

/* Run task(ctx, t, nt) on nt threads at once (t = 0 on the caller), waiting for every worker; for
 * tasks that meet at gb_barrier. */
void gb_parallel_team(gb_task_fn task, void *ctx, int nt);

/* Inside a gb_parallel_team task: wait until every thread of the team has reached this barrier. */
void gb_barrier(void);

/* Dynamic scheduling inside a task: the next unclaimed item of *counter (start it at 0). */
static inline int64_t gb_next_item(int64_t *counter) {
    return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}
