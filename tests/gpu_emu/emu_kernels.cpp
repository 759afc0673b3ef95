// ferry's CUDA kernels run on the CPU: a launch's blocks run one after
// another on the calling host thread (a stream's worker), each CUDA thread
// of a block a fiber (ucontext) with its own stack. See emu_device.h for
// what the kernels see, and docs/gpu-emulator.md for what this catches and
// what it cannot.
#include "emu.h"

#include "../../backends/gpu_common/kernels/ferry_kernels.cuh"
#include "../../backends/gpu_common/kernels/kernel_names.h"

#include <cstdarg>
#include <cstdio>
#include <cstring>
#include <memory>
#include <new>
#include <string>
#include <sys/mman.h>
#include <tuple>
#include <type_traits>
#include <ucontext.h>
#include <utility>
#include <vector>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define FERRY_EMU_ASAN 1
#else
#define FERRY_EMU_ASAN 0
#endif

namespace ferry_emu {

thread_local ThreadState *current;

namespace {

enum class Wait { RUN, BLOCK, WARP, DONE };

// Kernels keep little on their stacks; sanitizers want more.
constexpr size_t kStackBytes = FERRY_EMU_ASAN ? (512u << 10) : (128u << 10);
constexpr unsigned kWarp = FERRY_EMU_WARP_SIZE;

struct Fiber {
  ucontext_t ctx;
  ThreadState st;
  Wait wait;
  unsigned shuffles; // shuffles made so far: picks the exchange buffer
  unsigned barriers; // __syncthreads passed so far
  void *stack;
  void *fake_stack; // ASan's, while switched away
};

// A host thread's stacks, reused by every launch it runs; a guard page
// below each turns an overflow into a fault.
struct StackPool {
  std::vector<void *> stacks;
  ~StackPool() {
    for (void *s : stacks)
      munmap(static_cast<char *>(s) - 4096, kStackBytes + 4096);
  }
  void *get(size_t i) {
    while (stacks.size() <= i) {
      void *m = mmap(nullptr, kStackBytes + 4096, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
      if (m == MAP_FAILED)
        return nullptr;
      mprotect(m, 4096, PROT_NONE);
      stacks.push_back(static_cast<char *>(m) + 4096);
    }
    return stacks[i];
  }
};
thread_local StackPool pool;

typedef void (*CallFn)(const void *packed);

struct Block {
  std::vector<Fiber> fibers;
  std::vector<uint64_t> xchg[2]; // shuffle values, by shuffle parity
  ucontext_t sched;
  Fiber *running = nullptr;
  CallFn call = nullptr;
  const void *packed = nullptr;
  const void *sched_stack = nullptr; // the host thread's stack (ASan)
  size_t sched_stack_size = 0;
  void *sched_fake_stack = nullptr;
};
thread_local Block *blk;

void to_scheduler(Fiber *f, bool finished) {
#if FERRY_EMU_ASAN
  __sanitizer_start_switch_fiber(finished ? nullptr : &f->fake_stack,
                                 blk->sched_stack, blk->sched_stack_size);
#endif
  if (finished) {
    setcontext(&blk->sched);
    return;
  }
  swapcontext(&f->ctx, &blk->sched);
#if FERRY_EMU_ASAN
  __sanitizer_finish_switch_fiber(f->fake_stack, &blk->sched_stack,
                                  &blk->sched_stack_size);
#endif
}

void fiber_main(int index) {
  Fiber *f = &blk->fibers[(size_t)index];
#if FERRY_EMU_ASAN
  __sanitizer_finish_switch_fiber(nullptr, &blk->sched_stack,
                                  &blk->sched_stack_size);
#endif
  blk->call(blk->packed);
  f->wait = Wait::DONE;
  to_scheduler(f, true);
}

void resume(Fiber *f) {
  blk->running = f;
  current = &f->st;
#if FERRY_EMU_ASAN
  __sanitizer_start_switch_fiber(&blk->sched_fake_stack, f->stack, kStackBytes);
#endif
  swapcontext(&blk->sched, &f->ctx);
#if FERRY_EMU_ASAN
  __sanitizer_finish_switch_fiber(blk->sched_fake_stack, nullptr, nullptr);
#endif
  current = nullptr;
  blk->running = nullptr;
}

std::string format(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
std::string format(const char *fmt, ...) {
  char buf[512];
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(buf, sizeof buf, fmt, ap);
  va_end(ap);
  return buf;
}

// Releases the warps whose live lanes all wait at the same shuffle. A warp
// where some lanes wait at a shuffle and others have returned, or where
// lanes wait at different shuffles, is a kernel bug (undefined behaviour in
// CUDA: it hangs or reads garbage): `why` says which.
bool release_warps(Block &b, std::string &why) {
  bool released = false;
  const size_t n = b.fibers.size();
  for (size_t w0 = 0; w0 < n; w0 += kWarp) {
    const size_t w1 = w0 + kWarp < n ? w0 + kWarp : n;
    size_t at_warp = 0, done = 0, first = w1;
    for (size_t i = w0; i < w1; i++) {
      if (b.fibers[i].wait == Wait::WARP) {
        at_warp++;
        if (first == w1)
          first = i;
      } else if (b.fibers[i].wait == Wait::DONE) {
        done++;
      }
    }
    if (at_warp == 0 || at_warp + done != w1 - w0)
      continue;
    if (done > 0) {
      why = format("threads %zu..%zu of warp %zu: %zu of them returned while "
                   "the others wait at a shuffle",
                   w0, w1 - 1, w0 / kWarp, done);
      return false;
    }
    for (size_t i = w0; i < w1; i++) {
      if (b.fibers[i].shuffles != b.fibers[first].shuffles) {
        why = format("warp %zu: thread %zu is at its shuffle %u but thread "
                     "%zu at its shuffle %u",
                     w0 / kWarp, first, b.fibers[first].shuffles, i,
                     b.fibers[i].shuffles);
        return false;
      }
    }
    for (size_t i = w0; i < w1; i++)
      b.fibers[i].wait = Wait::RUN;
    released = true;
  }
  return released;
}

// Runs one block to its end; false with `why` when it cannot finish.
bool run_block(Block &b, const ThreadState &proto, std::string &why) {
  const size_t n = b.fibers.size();
  for (size_t i = 0; i < n; i++) {
    Fiber &f = b.fibers[i];
    f.st = proto;
    f.st.thread_idx = uint3{(unsigned)i, 0, 0};
    f.wait = Wait::RUN;
    f.shuffles = 0;
    f.barriers = 0;
    f.fake_stack = nullptr;
    f.stack = pool.get(i);
    if (f.stack == nullptr) {
      why = "no memory for the block's fiber stacks";
      return false;
    }
    getcontext(&f.ctx);
    f.ctx.uc_stack.ss_sp = f.stack;
    f.ctx.uc_stack.ss_size = kStackBytes;
    f.ctx.uc_link = nullptr;
    makecontext(&f.ctx, reinterpret_cast<void (*)()>(fiber_main), 1, (int)i);
  }
  for (;;) {
    for (Fiber &f : b.fibers)
      if (f.wait == Wait::RUN)
        resume(&f);
    size_t done = 0, at_block = 0, at_warp = 0;
    for (const Fiber &f : b.fibers) {
      done += f.wait == Wait::DONE;
      at_block += f.wait == Wait::BLOCK;
      at_warp += f.wait == Wait::WARP;
    }
    if (done == n)
      return true;
    if (at_warp > 0) {
      if (release_warps(b, why))
        continue;
      if (!why.empty())
        return false;
    }
    if (at_block > 0 && at_block + done == n) {
      unsigned k = 0;
      bool first = true;
      for (const Fiber &f : b.fibers) {
        if (f.wait != Wait::BLOCK)
          continue;
        if (first)
          k = f.barriers;
        else if (f.barriers != k) {
          why = format("threads wait at different __syncthreads (the "
                       "%u-th and the %u-th of their threads)",
                       k + 1, f.barriers + 1);
          return false;
        }
        first = false;
      }
      for (Fiber &f : b.fibers)
        if (f.wait == Wait::BLOCK)
          f.wait = Wait::RUN;
      continue;
    }
    why = format("deadlock: %zu threads wait at __syncthreads, %zu at a "
                 "shuffle whose warp never completes, %zu returned",
                 at_block, at_warp, done);
    return false;
  }
}

// ---- the kernel table ------------------------------------------------------

template <class F> struct Signature;
template <class... P> struct Signature<void (*)(P...)> {
  typedef std::tuple<typename std::decay<P>::type...> Tuple;
  template <size_t... I>
  static void *pack(void **args, std::index_sequence<I...>) {
    return new (std::nothrow)
        Tuple(*static_cast<typename std::decay<P>::type *>(args[I])...);
  }
  static void *pack_args(void **args) {
    return pack(args, std::index_sequence_for<P...>{});
  }
  static void free_args(void *p) {
    delete static_cast<Tuple *>(p);
  }
};

// Each CUDA thread gets its own copy of the parameters, as on a GPU.
template <auto F> void call_kernel(const void *packed) {
  typedef typename Signature<decltype(F)>::Tuple Tuple;
  Tuple copy = *static_cast<const Tuple *>(packed);
  std::apply(F, copy);
}

} // namespace

void block_barrier() {
  Fiber *f = blk->running;
  f->wait = Wait::BLOCK;
  to_scheduler(f, false);
  f->barriers++;
}

uint64_t warp_exchange(uint64_t bits, unsigned src_lane) {
  Fiber *f = blk->running;
  const unsigned parity = f->shuffles & 1u;
  const size_t tid = f->st.thread_idx.x;
  blk->xchg[parity][tid] = bits;
  f->wait = Wait::WARP;
  to_scheduler(f, false);
  f->shuffles++;
  const size_t src = tid - tid % kWarp + src_lane;
  return src < blk->fibers.size() ? blk->xchg[parity][src] : bits;
}

} // namespace ferry_emu

struct ferry_emu_kernel {
  const char *name;
  void *(*pack)(void **args);
  void (*free_args)(void *packed);
  ferry_emu::CallFn call;
};

#define FERRY_EMU_KERNEL_ENTRY(name)                                           \
  {"ferry_k_" #name,                                                           \
   &ferry_emu::Signature<decltype(&ferry_k_##name)>::pack_args,                \
   &ferry_emu::Signature<decltype(&ferry_k_##name)>::free_args,                \
   &ferry_emu::call_kernel<&ferry_k_##name>},
static const ferry_emu_kernel kernel_table[] = {
    FERRY_GPU_KERNELS(FERRY_EMU_KERNEL_ENTRY)};
#undef FERRY_EMU_KERNEL_ENTRY

extern "C" const ferry_emu_kernel *ferry_emu_kernel_find(const char *name) {
  for (const ferry_emu_kernel &k : kernel_table)
    if (std::strcmp(k.name, name) == 0)
      return &k;
  return nullptr;
}

extern "C" const char *ferry_emu_kernel_name(const ferry_emu_kernel *k) {
  return k->name;
}

extern "C" void *ferry_emu_kernel_pack(const ferry_emu_kernel *k, void **args) {
  return k->pack(args);
}

extern "C" void ferry_emu_kernel_unpack_free(const ferry_emu_kernel *k,
                                             void *packed) {
  if (packed)
    k->free_args(packed);
}

extern "C" int ferry_emu_warp_size(void) {
  return FERRY_EMU_WARP_SIZE;
}

extern "C" int ferry_emu_kernel_run(const ferry_emu_kernel *k,
                                    const void *packed, uint32_t grid,
                                    uint32_t block, uint32_t shared_bytes,
                                    char *why, size_t why_size) {
  using namespace ferry_emu;
  Block b;
  try {
    b.fibers.resize(block);
    b.xchg[0].assign(block, 0);
    b.xchg[1].assign(block, 0);
  } catch (const std::bad_alloc &) {
    snprintf(why, why_size, "%s: no memory for a block of %u threads", k->name,
             block);
    return 1;
  }
  // Shared memory starts as garbage on a GPU: poison it, so that a kernel
  // reading what it never wrote gets no friendly zeros.
  std::vector<unsigned char> shared(shared_bytes + 16u, 0xA5);
  void *aligned = shared.data();
  size_t space = shared.size();
  std::align(16, shared_bytes, aligned, space);
  b.call = k->call;
  b.packed = packed;
  Block *outer = blk;
  blk = &b;
  ThreadState proto;
  std::memset(&proto, 0, sizeof proto);
  proto.block_dim = dim3{block, 1, 1};
  proto.grid_dim = dim3{grid, 1, 1};
  proto.dynamic_shared = static_cast<unsigned char *>(aligned);
  int rc = 0;
  for (uint32_t x = 0; x < grid; x++) {
    proto.block_idx = uint3{x, 0, 0};
    std::string reason;
    if (!run_block(b, proto, reason)) {
      snprintf(why, why_size, "%s (grid %u, block %u), block %u: %s", k->name,
               grid, block, x, reason.c_str());
      rc = 1;
      break;
    }
  }
  blk = outer;
  return rc;
}
