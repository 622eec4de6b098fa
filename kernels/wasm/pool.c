/*
 * A persistent thread pool: the main thread and (threads − 1) pthreads share each
 * parallel_for. Its chunks (of `grain` elements) are dealt out as one contiguous run per
 * thread, which the thread takes from the front; a thread whose run is done takes chunks
 * from the back of the others', so a core busy with other work slows only its own share.
 * Idle workers spin briefly (ops come back to back while decoding) and then sleep on a
 * futex. The single-threaded build runs tasks inline.
 */
#include "omni.h"
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define MAX_THREADS 16

static int thread_count = 1;

typedef struct {
  void *data;
  size_t bytes;
} scratch_t;

static scratch_t thread_scratch[MAX_THREADS];
static scratch_t shared_scratch[SCRATCH_SLOTS];

static void *grow(scratch_t *s, size_t bytes) {
  if (s->bytes >= bytes) return s->data;
  free(s->data);
  s->data = aligned_alloc(64, (bytes + 63) & ~(size_t)63);
  s->bytes = s->data ? bytes : 0;
  return s->data;
}

void *omni_thread_scratch(int thread, size_t bytes) { return grow(&thread_scratch[thread], bytes); }
void *omni_shared_scratch(int slot, size_t bytes) { return grow(&shared_scratch[slot], bytes); }

int omni_threads(void) { return thread_count; }

int omni_reserve_thread_scratch(size_t bytes) {
  for (int t = 0; t < thread_count; t++) {
    if (!omni_thread_scratch(t, bytes)) return -1;
  }
  return 0;
}

OMNI_EXPORT void *omni_malloc(size_t bytes) { return aligned_alloc(64, (bytes + 63) & ~(size_t)63); }
OMNI_EXPORT void omni_free(void *p) { free(p); }

#ifdef __EMSCRIPTEN_PTHREADS__
#include <emscripten/threading.h>
#include <pthread.h>

/*
 * Spin iterations before a worker sleeps, and before the main thread waits on the futex:
 * about 100–200 µs. A decode step runs a few single-threaded ops (rotary, attention on a short
 * cache, norms) between its GEMVs; with 20000 rounds (10–20 µs) the worker slept through those
 * gaps, and the next 896×896 GEMV waited for it to wake (23 µs, against 8.5 with the worker
 * spinning). 0.5B q4 decode, 2 threads, Node 26, builds in alternation: 9.17 → 8.76 ms a
 * token at context 0, about 12 → 10.4 ms at 1024.
 */
#define SPIN_ROUNDS 200000

/*
 * The main thread publishes a job under a sequence number that is odd while it rewrites
 * the fields. A worker enters a job by raising `active` and checking that the sequence
 * did not move; the main thread rewrites only once no worker is inside. Completion is
 * counted in finished elements, not in workers, so a worker the OS has not scheduled
 * never holds up a job: the threads that are running take all of its chunks.
 *
 * Each thread's run of chunks is one word, (front << 32) | back, changed only by
 * compare-and-swap: its owner takes the front chunk, others the back one. A thread thus
 * reads its part of a weight as one stream: two threads alternating chunks of a 896×896 q4
 * GEMV from one counter read it from memory in 20 µs, against 15 µs in one run each.
 */
static struct {
  omni_task task;
  void *ctx;
  int count, grain, runs;
  _Atomic uint64_t run[MAX_THREADS];
  _Atomic uint32_t done;
  _Atomic uint32_t sequence;
  _Atomic int active;
  _Atomic int quit;
} job;

static pthread_t workers[MAX_THREADS];
static _Atomic int started;

static void run_chunk(int chunk, int thread) {
  int begin = chunk * job.grain, end = begin + job.grain < job.count ? begin + job.grain : job.count;
  job.task(job.ctx, begin, end, thread);
  if (atomic_fetch_add(&job.done, (uint32_t)(end - begin)) + (uint32_t)(end - begin) == (uint32_t)job.count) {
    emscripten_futex_wake(&job.done, 1);
  }
}

/* Takes the front chunk of run r (from_back = 0) or its back chunk; −1 when the run is empty. */
static int take(int r, int from_back) {
  uint64_t word = atomic_load(&job.run[r]);
  for (;;) {
    uint32_t front = (uint32_t)(word >> 32), back = (uint32_t)word;
    if (front >= back) return -1;
    uint64_t next = from_back ? ((uint64_t)front << 32) | (back - 1) : ((uint64_t)(front + 1) << 32) | back;
    if (atomic_compare_exchange_weak(&job.run[r], &word, next)) return (int)(from_back ? back - 1 : front);
  }
}

static void run_share(int thread) {
  int chunk;
  while ((chunk = take(thread, 0)) >= 0) run_chunk(chunk, thread);
  for (int i = 1; i < job.runs; i++) {
    int victim = (thread + i) % job.runs;
    while ((chunk = take(victim, 1)) >= 0) run_chunk(chunk, thread);
  }
}

static void *worker_main(void *arg) {
  int thread = (int)(intptr_t)arg;
  uint32_t seen = 0;
  atomic_fetch_add(&started, 1);
  for (;;) {
    uint32_t sequence;
    int spins = 0;
    for (;;) {
      sequence = atomic_load(&job.sequence);
      if (sequence != seen && !(sequence & 1)) {
        atomic_fetch_add(&job.active, 1);
        if (atomic_load(&job.sequence) == sequence) break;
        atomic_fetch_sub(&job.active, 1);
        continue;
      }
      if (++spins > SPIN_ROUNDS) emscripten_futex_wait(&job.sequence, sequence, INFINITY);
    }
    seen = sequence;
    if (!atomic_load(&job.quit)) run_share(thread);
    atomic_fetch_sub(&job.active, 1);
    if (atomic_load(&job.quit)) return NULL;
  }
}

/* Sets the job's fields while no worker is inside one, then releases it to the pool. */
static void publish(omni_task task, void *ctx, int count, int grain) {
  uint32_t sequence = atomic_load(&job.sequence);
  atomic_store(&job.sequence, sequence + 1);
  while (atomic_load(&job.active) != 0) {
  }
  job.task = task;
  job.ctx = ctx;
  job.count = count;
  job.grain = grain;
  int chunks = (count + grain - 1) / grain;
  job.runs = thread_count;
  for (int r = 0; r < job.runs; r++) {
    uint64_t front = (uint64_t)chunks * r / job.runs, back = (uint64_t)chunks * (r + 1) / job.runs;
    atomic_store(&job.run[r], (front << 32) | back);
  }
  atomic_store(&job.done, 0);
  atomic_store(&job.sequence, sequence + 2);
  emscripten_futex_wake(&job.sequence, MAX_THREADS);
}

/* Starts threads − 1 workers; returns how many were created (the JS side waits for omni_pool_started). */
OMNI_EXPORT int omni_pool_start(int threads) {
  if (threads < 1) threads = 1;
  if (threads > MAX_THREADS) threads = MAX_THREADS;
  atomic_store(&job.quit, 0);
  int created = 0;
  for (int t = 1; t < threads; t++) {
    if (pthread_create(&workers[t], NULL, worker_main, (void *)(intptr_t)t) != 0) break;
    created++;
  }
  thread_count = 1 + created;
  return created;
}

OMNI_EXPORT int omni_pool_started(void) { return atomic_load(&started); }

OMNI_EXPORT void omni_pool_stop(void) {
  atomic_store(&job.quit, 1);
  publish(NULL, NULL, 0, 1);
  for (int t = 1; t < thread_count; t++) pthread_join(workers[t], NULL);
  thread_count = 1;
  atomic_store(&started, 0);
}

void omni_parallel_for(int count, int grain, omni_task task, void *ctx) {
  if (count <= 0) return;
  if (grain < 1) grain = 1;
  if (thread_count == 1 || count <= grain) {
    for (int begin = 0; begin < count; begin += grain) task(ctx, begin, begin + grain < count ? begin + grain : count, 0);
    return;
  }
  publish(task, ctx, count, grain);
  run_share(0);
  uint32_t done;
  int spins = 0;
  while ((done = atomic_load(&job.done)) != (uint32_t)count) {
    if (++spins > SPIN_ROUNDS) emscripten_futex_wait(&job.done, done, INFINITY);
  }
}

#else

OMNI_EXPORT int omni_pool_start(int threads) { (void)threads; return 0; }
OMNI_EXPORT int omni_pool_started(void) { return 0; }
OMNI_EXPORT void omni_pool_stop(void) {}

void omni_parallel_for(int count, int grain, omni_task task, void *ctx) {
  if (grain < 1) grain = 1;
  for (int begin = 0; begin < count; begin += grain) task(ctx, begin, begin + grain < count ? begin + grain : count, 0);
}

#endif
