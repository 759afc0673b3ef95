/* Contexts: one cl_context on one device, and the objects made on it.
 *
 * The context keeps every stream, event and buffer on a list, so that it can
 * wait for all streams (context_synchronize), free what the caller left
 * behind at destruction, and free destroyed streams once their worker
 * threads have finished releasing them. */
#include "internal.h"

#include <stdlib.h>
#include <string.h>

static void list_init(ocl_link *head) {
  head->prev = head->next = head;
}

static void list_insert(ocl_link *head, ocl_link *node) {
  node->next = head->next;
  node->prev = head;
  head->next->prev = node;
  head->next = node;
}

static void list_remove(ocl_link *node) {
  node->prev->next = node->next;
  node->next->prev = node->prev;
  node->prev = node->next = node;
}

void ocl_context_adopt(ferry_be_context *ctx, ocl_link *list, ocl_link *node) {
  pthread_mutex_lock(&ctx->lock);
  list_insert(list, node);
  pthread_mutex_unlock(&ctx->lock);
}

void ocl_context_drop(ferry_be_context *ctx, ocl_link *node, uint32_t flags) {
  if (flags & FERRY_BE_DESTROY_FORKED) {
    /* Only this thread exists in the child; the lock may have been held by
     * one that does not. */
    list_remove(node);
    return;
  }
  pthread_mutex_lock(&ctx->lock);
  list_remove(node);
  pthread_mutex_unlock(&ctx->lock);
}

/* Streams whose release finished and that nobody is looking at, taken off
 * the list into `out` (linked through link.next). Called with the lock. */
static ferry_be_stream *take_released(ferry_be_context *ctx) {
  ferry_be_stream *done = NULL;
  ocl_link *l = ctx->streams.next;
  while (l != &ctx->streams) {
    ocl_link *next = l->next;
    ferry_be_stream *s = (ferry_be_stream *)l;
    if (s->state == OCL_STREAM_RELEASED && s->refs == 0) {
      list_remove(l);
      l->next = done ? &done->link : NULL;
      done = s;
    }
    l = next;
  }
  return done;
}

static void free_taken(ferry_be_stream *s) {
  while (s) {
    ferry_be_stream *next =
        s->link.next ? (ferry_be_stream *)s->link.next : NULL;
    ocl_stream_free(s, 0);
    s = next;
  }
}

void ocl_context_reap(ferry_be_context *ctx) {
  pthread_mutex_lock(&ctx->lock);
  ferry_be_stream *done = take_released(ctx);
  pthread_mutex_unlock(&ctx->lock);
  free_taken(done);
}

static void CL_CALLBACK context_notice(const char *errinfo,
                                       const void *private_info, size_t cb,
                                       void *user) {
  (void)private_info;
  (void)cb;
  (void)user;
  /* Drivers send warnings and errors here; the errors also reach the
   * commands' events, where they are reported. */
  ocl_host->trace("opencl", "context notice: %s", errinfo);
}

ferry_status ocl_context_create(const ferry_be_context_params *params,
                                ferry_be_context **out) {
  const ocl_device *dev = ocl_device_get(params->device_index);
  if (dev == NULL)
    return ocl_host->set_error(FERRY_ERR_OUT_OF_RANGE,
                               "opencl context: device %d does not exist",
                               params->device_index);
  if (!dev->info.usable)
    return ocl_host->set_error(
        FERRY_ERR_NO_DEVICE, "opencl context: device %d (%s) is unusable: %s",
        params->device_index, dev->info.name, dev->info.reason);
  ferry_be_context *ctx = calloc(1, sizeof *ctx);
  if (ctx == NULL)
    return ocl_host->set_error(FERRY_ERR_OUT_OF_MEMORY,
                               "opencl context: out of host memory");
  cl_context_properties props[] = {CL_CONTEXT_PLATFORM,
                                   (cl_context_properties)dev->platform, 0};
  cl_int err = CL_SUCCESS;
  ctx->cl = clCreateContext(props, 1, &dev->id, context_notice, NULL, &err);
  if (err != CL_SUCCESS) {
    free(ctx);
    return ocl_fail("clCreateContext", err);
  }
  ctx->dev = dev;
  ctx->cookie = params->context_cookie;
  pthread_mutex_init(&ctx->lock, NULL);
  pthread_cond_init(&ctx->stream_released, NULL);
  list_init(&ctx->streams);
  list_init(&ctx->events);
  list_init(&ctx->buffers);
  ocl_program_cache_init(&ctx->programs, ctx->cl, dev->id);
  *out = ctx;
  return FERRY_OK;
}

/* Take the first node of `list` (NULL when empty), under the lock unless
 * forked. */
static ocl_link *pop(ferry_be_context *ctx, ocl_link *list, bool forked) {
  if (!forked)
    pthread_mutex_lock(&ctx->lock);
  ocl_link *l = list->next;
  if (l == list)
    l = NULL;
  else
    list_remove(l);
  if (!forked)
    pthread_mutex_unlock(&ctx->lock);
  return l;
}

void ocl_context_destroy(ferry_be_context *ctx, uint32_t flags) {
  if (ctx == NULL)
    return;
  bool forked = (flags & FERRY_BE_DESTROY_FORKED) != 0;
  ocl_link *l;
  if (forked) {
    while ((l = pop(ctx, &ctx->streams, true)) != NULL)
      ocl_stream_free((ferry_be_stream *)l, flags);
  } else {
    /* Streams first: their work may use the events and buffers. Destroyed
     * streams finish releasing on their own threads; the others are
     * finished here. */
    pthread_mutex_lock(&ctx->lock);
    for (;;) {
      ferry_be_stream *live = NULL;
      bool releasing = false;
      for (l = ctx->streams.next; l != &ctx->streams; l = l->next) {
        ferry_be_stream *s = (ferry_be_stream *)l;
        if (s->state == OCL_STREAM_LIVE && live == NULL)
          live = s;
        else if (s->state == OCL_STREAM_RELEASING)
          releasing = true;
      }
      ferry_be_stream *done = take_released(ctx);
      if (done) {
        pthread_mutex_unlock(&ctx->lock);
        free_taken(done);
        pthread_mutex_lock(&ctx->lock);
      } else if (live) {
        list_remove(&live->link);
        pthread_mutex_unlock(&ctx->lock);
        ocl_stream_teardown(live);
        pthread_mutex_lock(&ctx->lock);
      } else if (releasing) {
        pthread_cond_wait(&ctx->stream_released, &ctx->lock);
      } else {
        break;
      }
    }
    pthread_mutex_unlock(&ctx->lock);
  }
  while ((l = pop(ctx, &ctx->events, forked)) != NULL)
    ocl_event_free((ferry_be_event *)l, flags);
  while ((l = pop(ctx, &ctx->buffers, forked)) != NULL) {
    ferry_be_buffer *b = (ferry_be_buffer *)l;
    if (!forked)
      clReleaseMemObject(b->mem);
    free(b);
  }
  ocl_program_cache_fini(&ctx->programs, flags);
  if (!forked) {
    clReleaseContext(ctx->cl);
    pthread_cond_destroy(&ctx->stream_released);
    pthread_mutex_destroy(&ctx->lock);
  }
  free(ctx);
}

ferry_status ocl_context_synchronize(ferry_be_context *ctx) {
  /* Look at every stream without holding the lock while waiting: a host
   * function may create streams or buffers of this context meanwhile. The
   * refs keep the streams from being reaped under us. */
  pthread_mutex_lock(&ctx->lock);
  size_t n = 0;
  for (ocl_link *l = ctx->streams.next; l != &ctx->streams; l = l->next)
    n++;
  ferry_be_stream **seen = n ? malloc(n * sizeof *seen) : NULL;
  cl_command_queue *queues = n ? calloc(n, sizeof *queues) : NULL;
  if (n && (seen == NULL || queues == NULL)) {
    pthread_mutex_unlock(&ctx->lock);
    free(seen);
    free(queues);
    return ocl_host->set_error(FERRY_ERR_OUT_OF_MEMORY,
                               "opencl context_synchronize: out of host "
                               "memory");
  }
  size_t i = 0;
  for (ocl_link *l = ctx->streams.next; l != &ctx->streams; l = l->next) {
    ferry_be_stream *s = (ferry_be_stream *)l;
    s->refs++;
    seen[i] = s;
    /* A live stream's queue may be released by its worker once the caller
     * destroys the stream: hold our own reference while finishing it. */
    if (s->state == OCL_STREAM_LIVE &&
        clRetainCommandQueue(s->queue) == CL_SUCCESS)
      queues[i] = s->queue;
    i++;
  }
  pthread_mutex_unlock(&ctx->lock);

  ferry_status st = FERRY_OK;
  for (i = 0; i < n; i++) {
    if (queues[i] == NULL)
      continue;
    cl_int err = clFinish(queues[i]);
    clReleaseCommandQueue(queues[i]);
    if (err != CL_SUCCESS && st == FERRY_OK) {
      if (ocl_error_is_fatal(err))
        ocl_host->context_lost(ctx->cookie, FERRY_ERR_CONTEXT_LOST,
                               "clFinish: %s (%d)", ocl_error_name(err),
                               (int)err);
      st = ocl_fail("clFinish", err);
    }
    ocl_stream_wait_idle(seen[i]);
  }
  pthread_mutex_lock(&ctx->lock);
  for (i = 0; i < n; i++) {
    while (seen[i]->state == OCL_STREAM_RELEASING)
      pthread_cond_wait(&ctx->stream_released, &ctx->lock);
    seen[i]->refs--;
  }
  ferry_be_stream *done = take_released(ctx);
  pthread_mutex_unlock(&ctx->lock);
  free_taken(done);
  free(seen);
  free(queues);
  return st;
}
