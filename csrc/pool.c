/* The kernels' thread team (see internal/gb_pool.h for why and how to use it).
 *
 * Linux: nworkers detached pthreads plus the caller. A job is posted by bumping the `job` word (its low
 * bit says which kind). Two kinds:
 *   - slots (gb_parallel): the job's nt slots are claimed from the `claim` word, which carries the job's
 *     number, its slot count and the next free slot, so a claim is valid only for the job it names.
 *     The caller claims slots too, and waits only for slots a worker has claimed: a worker that is late
 *     (asleep, or its vCPU descheduled) holds nobody up, it finds no slot left and goes back to waiting.
 *   - a team (gb_parallel_team): every started worker takes part (those with t >= nt only check in),
 *     so the caller's wait on `left` reaching 0 covers them all and gb_barrier can wait for nt threads.
 * Waiting (for a job, at the join, at a barrier) is wait_while_equal: pause-spin, then
 * sched_yield-spin, then a futex sleep.
 * The workers are kept off the CPU the caller runs on (their affinity is the process's CPUs minus the
 * caller's, set again only when the caller has moved). Without that, a worker woken from its futex sleep
 * was placed on the caller's own CPU in 10 of 12 jobs after a 10 ms idle gap on a 2-vCPU KVM guest (the
 * other, halted vCPU does not count as idle), where it waited behind the caller for milliseconds: the
 * caller then ran every slot, and a 2-thread convolution took its 1-thread time. */
#if defined(__linux__)
#define _GNU_SOURCE
#endif
#include "internal/gb_common.h"
#include "internal/gb_pool.h"

#if defined(__linux__)
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define MAX_TEAM 256
#define SPIN_PAUSE_NS 20000   /* stage 1: spin with pause for 20 us */
#define SPIN_YIELD_NS 300000  /* stage 2: spin calling sched_yield until 300 us, then sleep */

static struct {
    pthread_mutex_t lock;     /* one job at a time; a second caller runs inline */
    int nworkers;             /* started workers: thread ids 1 .. nworkers */
    uint32_t job;             /* bumped to post a job: even for slots, odd for a team job */
    uint32_t done;            /* set to the job's number by the last thread to finish it */
    uint32_t left;            /* team job: workers still in it */
    uint64_t claim;           /* slot job: number << 32 | nslots << 16 | next slot */
    uint32_t finished;        /* slot job: slots finished */
    gb_task_fn task;
    void *ctx;
    int nt;
    uint32_t bar_arrived, bar_gen;                      /* the in-task barrier */
    uint32_t job_sleepers, done_sleepers, bar_sleepers; /* threads asleep on each word */
} team = {PTHREAD_MUTEX_INITIALIZER};
static uint32_t start_job[MAX_TEAM];  /* the job number each worker starts from */
static pid_t worker_tid[MAX_TEAM];    /* each worker's thread id, once it has started (0 before) */
static cpu_set_t allowed_cpus;        /* the process's CPUs when the team started */
static int steered_from = -1;         /* the caller CPU the workers' affinity excludes (-1: none yet) */
static __thread int team_size;        /* > 0 while this thread runs a task: its team's nt */
static __thread int in_slots;         /* running a slot of a gb_parallel job: no barrier possible */

static void futex_wait(uint32_t *word, uint32_t val) {
    syscall(SYS_futex, word, FUTEX_WAIT_PRIVATE, val, NULL, NULL, 0);
}

static void futex_wake_all(uint32_t *word) {
    syscall(SYS_futex, word, FUTEX_WAKE_PRIVATE, INT_MAX, NULL, NULL, 0);
}

static inline void cpu_relax(void) {
#if GB_X86
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

static int64_t now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Return once *word != old. The sleeper count and the word are sequentially consistent on both
 * sides (the writer stores the word then reads the count, a sleeper adds to the count then reads
 * the word), so a writer that sees no sleeper is sure to be seen. */
static void wait_while_equal(uint32_t *word, uint32_t old, uint32_t *sleepers) {
    int64_t t0 = 0;
    for (int i = 1;; i++) {
        if (__atomic_load_n(word, __ATOMIC_ACQUIRE) != old) return;
        if ((i & 31) == 0) {
            int64_t t = now_ns();
            if (!t0) t0 = t;
            else if (t - t0 > SPIN_YIELD_NS) break;
            else if (t - t0 > SPIN_PAUSE_NS) sched_yield();  /* a busy neighbour gets the core */
        }
        cpu_relax();
    }
    __atomic_fetch_add(sleepers, 1, __ATOMIC_SEQ_CST);
    while (__atomic_load_n(word, __ATOMIC_SEQ_CST) == old) futex_wait(word, old);
    __atomic_fetch_sub(sleepers, 1, __ATOMIC_SEQ_CST);
}

static void publish(uint32_t *word, uint32_t value, uint32_t *sleepers) {
    __atomic_store_n(word, value, __ATOMIC_SEQ_CST);
    if (__atomic_load_n(sleepers, __ATOMIC_SEQ_CST)) futex_wake_all(word);
}

/* Run task slot t of the current job on this thread. */
static void run_slot(int t, int nt, int slots) {
    team_size = nt;
    in_slots = slots;
    team.task(team.ctx, t, nt);
    in_slots = 0;
    team_size = 0;
}

/* Claim and run the current slot job's free slots; the thread that finishes its last slot publishes the
 * job's number in `done`. Returns once no slot is free. */
static void run_free_slots(void) {
    for (;;) {
        uint64_t w = __atomic_load_n(&team.claim, __ATOMIC_ACQUIRE);
        uint32_t number = (uint32_t)(w >> 32), nslots = (uint32_t)(w >> 16) & 0xffff, next = (uint32_t)w & 0xffff;
        if (next >= nslots) return;
        if (!__atomic_compare_exchange_n(&team.claim, &w, w + 1, 0, __ATOMIC_ACQ_REL, __ATOMIC_RELAXED)) continue;
        run_slot((int)next, (int)nslots, 1);  /* the job cannot end before this slot does */
        if (__atomic_add_fetch(&team.finished, 1, __ATOMIC_ACQ_REL) == nslots)
            publish(&team.done, number, &team.done_sleepers);
    }
}

static void *worker_main(void *arg) {
    int t = (int)(intptr_t)arg;
    uint32_t seen = start_job[t];
    __atomic_store_n(&worker_tid[t], (pid_t)syscall(SYS_gettid), __ATOMIC_RELEASE);
    for (;;) {
        wait_while_equal(&team.job, seen, &team.job_sleepers);
        seen = __atomic_load_n(&team.job, __ATOMIC_ACQUIRE);  /* a team job waits for us: no skip */
        if (!(seen & 1)) {
            run_free_slots();  /* nothing left if we are late: back to waiting */
            continue;
        }
        if (t < team.nt) run_slot(t, team.nt, 0);
        if (__atomic_sub_fetch(&team.left, 1, __ATOMIC_ACQ_REL) == 0) publish(&team.done, seen, &team.done_sleepers);
    }
    return NULL;
}

/* A forked child has none of the parent's workers: start from an empty team. */
static void after_fork_in_child(void) {
    pthread_mutex_init(&team.lock, NULL);
    team.nworkers = 0;
    team.job = team.done = team.left = team.finished = 0;
    team.claim = 0;
    team.bar_arrived = team.bar_gen = 0;
    team.job_sleepers = team.done_sleepers = team.bar_sleepers = 0;
    team_size = in_slots = 0;
    memset(worker_tid, 0, sizeof worker_tid);
    steered_from = -1;
}

/* Start workers until there are `want` (fewer if the system refuses a thread). Caller holds the lock. */
static void start_workers(int want) {
    static int atfork_done;
    if (!atfork_done) {
        pthread_atfork(NULL, NULL, after_fork_in_child);
        atfork_done = 1;
    }
    if (!team.nworkers && sched_getaffinity(0, sizeof allowed_cpus, &allowed_cpus) != 0) CPU_ZERO(&allowed_cpus);
    while (team.nworkers < want) {
        int t = team.nworkers + 1;
        pthread_attr_t attr;
        pthread_t thread;
        start_job[t] = team.job;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        int rc = pthread_create(&thread, &attr, worker_main, (void *)(intptr_t)t);
        pthread_attr_destroy(&attr);
        if (rc) break;
        team.nworkers = t;
    }
}

static void run_inline(gb_task_fn task, void *ctx) {
    int saved = team_size;
    team_size = 1;  /* a gb_barrier inside is a no-op, also when nested in another team's task */
    task(ctx, 0, 1);
    team_size = saved;
}

/* Keep the workers off the caller's current CPU (see the top of the file). One sched_getcpu per job; the
 * affinity syscalls only when the caller has moved to another CPU. */
static void steer_workers(void) {
    int cpu = sched_getcpu();
    if (cpu < 0 || cpu == steered_from || cpu >= CPU_SETSIZE || !CPU_ISSET(cpu, &allowed_cpus) ||
        CPU_COUNT(&allowed_cpus) < 2)
        return;
    cpu_set_t others = allowed_cpus;
    CPU_CLR(cpu, &others);
    int pending = 0;
    for (int t = 1; t <= team.nworkers; t++) {
        pid_t tid = __atomic_load_n(&worker_tid[t], __ATOMIC_ACQUIRE);
        if (tid) sched_setaffinity(tid, sizeof others, &others);  /* refused (a cpuset): left as it is */
        else pending = 1;
    }
    if (!pending) steered_from = cpu;  /* else again at the next job, once the new worker has started */
}

/* Take the team for a job of nt threads: returns the nt to use (fewer if fewer workers could be
 * started), or 0 after running the task inline (nt <= 1, the team busy or nested). */
static int take_team(gb_task_fn task, void *ctx, int nt) {
    if (nt > MAX_TEAM) nt = MAX_TEAM;
    if (nt <= 1 || team_size || pthread_mutex_trylock(&team.lock) != 0) {
        run_inline(task, ctx);
        return 0;
    }
    start_workers(nt - 1);
    if (nt > team.nworkers + 1) nt = team.nworkers + 1;
    if (nt <= 1) {
        pthread_mutex_unlock(&team.lock);
        run_inline(task, ctx);
        return 0;
    }
    steer_workers();
    team.task = task;
    team.ctx = ctx;
    team.nt = nt;
    return nt;
}

void gb_parallel(gb_task_fn task, void *ctx, int nt) {
    if (!(nt = take_team(task, ctx, nt))) return;
    uint32_t before = team.done, job = (team.job + 2) & ~1u;  /* the next even number */
    team.finished = 0;
    /* slot 0 is the caller's; the job's number rides in the claim word so a stale claim fails */
    __atomic_store_n(&team.claim, (uint64_t)job << 32 | (uint64_t)nt << 16 | 1u, __ATOMIC_RELEASE);
    publish(&team.job, job, &team.job_sleepers);
    run_slot(0, nt, 1);
    if (__atomic_add_fetch(&team.finished, 1, __ATOMIC_ACQ_REL) != (uint32_t)nt) {
        run_free_slots();
        wait_while_equal(&team.done, before, &team.done_sleepers);  /* claimed slots still running */
    }
    pthread_mutex_unlock(&team.lock);
}

void gb_parallel_team(gb_task_fn task, void *ctx, int nt) {
    if (!(nt = take_team(task, ctx, nt))) return;
    team.left = (uint32_t)team.nworkers;
    uint32_t before = team.done, job = (team.job + 2) | 1u;  /* odd: a team job */
    publish(&team.job, job, &team.job_sleepers);
    run_slot(0, nt, 0);
    wait_while_equal(&team.done, before, &team.done_sleepers);
    pthread_mutex_unlock(&team.lock);
}

void gb_barrier(void) {
    int nt = team_size;
    if (nt <= 1) return;
    if (in_slots) {  /* a programming error: the other slots may run after this one, on this thread */
        fprintf(stderr, "goldbull_np: gb_barrier inside a gb_parallel task (use gb_parallel_team)\n");
        abort();
    }
    uint32_t gen = __atomic_load_n(&team.bar_gen, __ATOMIC_ACQUIRE);
    if (__atomic_add_fetch(&team.bar_arrived, 1, __ATOMIC_ACQ_REL) == (uint32_t)nt) {
        __atomic_store_n(&team.bar_arrived, 0, __ATOMIC_RELAXED);  /* before anyone can pass */
        publish(&team.bar_gen, gen + 1, &team.bar_sleepers);
    } else {
        wait_while_equal(&team.bar_gen, gen, &team.bar_sleepers);
    }
}

#else  /* elsewhere: OpenMP's team */

void gb_parallel(gb_task_fn task, void *ctx, int nt) {
    if (nt <= 1) {
        task(ctx, 0, 1);
        return;
    }
    #pragma omp parallel num_threads(nt)
    task(ctx, gb_thread_num(), gb_num_threads());
}

void gb_parallel_team(gb_task_fn task, void *ctx, int nt) { gb_parallel(task, ctx, nt); }

void gb_barrier(void) {
    #pragma omp barrier
}

#endif
