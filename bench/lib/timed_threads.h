/*
 * run_timed: runs fn on `threads` pthreads (the calling one included), each on its own job,
 * and returns the milliseconds from the moment all of them stand ready to the moment the last
 * one is done, timed on the calling thread. Starting a pthread (a message to a pooled worker,
 * about a millisecond in a page) stays out of the figure, as it does for the kernels the
 * figure judges, whose pool threads are already running. Bench probes only (roofline.c, peak.c).
 */
#pragma once
#include <emscripten.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stddef.h>

#define TIMED_MAX_THREADS 16

static atomic_int timed_ready, timed_go, timed_done;
/* Where a probe leaves its jobs' results, so that the compiler keeps the loops that make them. */
static volatile float timed_sink;
typedef struct { void* (*fn)(void*); void* job; } timed_start;

static void* timed_thread(void* arg) {
  timed_start* s = (timed_start*)arg;
  atomic_fetch_add(&timed_ready, 1);
  while (!atomic_load(&timed_go)) {}
  s->fn(s->job);
  atomic_fetch_add(&timed_done, 1);
  return 0;
}

/* jobs: `threads` jobs of job_size bytes each, side by side; threads ≤ TIMED_MAX_THREADS. */
static double run_timed(void* (*fn)(void*), void* jobs, size_t job_size, int threads) {
  pthread_t tid[TIMED_MAX_THREADS];
  timed_start starts[TIMED_MAX_THREADS];
  atomic_store(&timed_ready, 0);
  atomic_store(&timed_go, 0);
  atomic_store(&timed_done, 0);
  for (int t = 1; t < threads; t++) {
    starts[t] = (timed_start){ fn, (char*)jobs + (size_t)t * job_size };
    pthread_create(&tid[t], 0, timed_thread, &starts[t]);
  }
  while (atomic_load(&timed_ready) < threads - 1) {}
  double t0 = emscripten_get_now();
  atomic_store(&timed_go, 1);
  fn(jobs);
  while (atomic_load(&timed_done) < threads - 1) {}
  double ms = emscripten_get_now() - t0;
  for (int t = 1; t < threads; t++) pthread_join(tid[t], 0);
  return ms;
}
