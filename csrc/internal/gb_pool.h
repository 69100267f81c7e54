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
 *     gb_parallel(task, &args, nt);    // t = 0 runs on the calling thread
 * Inside a task, gb_barrier() waits for the nt threads of the team. A call made while the team is
 * busy (another Python thread, or from inside a task) runs inline with nt = 1, so tasks must only
 * use t and nt for their split. Off Linux the team is OpenMP's. */
#pragma once
#include <stdint.h>

typedef void (*gb_task_fn)(void *ctx, int t, int nt);

/* Run task(ctx, t, nt) for t = 0 .. nt-1 (t = 0 on the caller); returns when every t is done. */
void gb_parallel(gb_task_fn task, void *ctx, int nt);

/* Inside a task: wait until every thread of the current team has reached this barrier. */
void gb_barrier(void);

/* Dynamic scheduling inside a task: the next unclaimed item of *counter (start it at 0). */
static inline int64_t gb_next_item(int64_t *counter) {
    return __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}
