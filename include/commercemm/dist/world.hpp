#pragma once
// dist::World: this process's membership of a distributed job, set up from the launch
// environment (dist/environment.hpp) with PyTorch's own c10d pieces: a TCPStore rendezvous
// (hosted by rank 0, or by torchrun's agent) and two process groups (Gloo on CPU, NCCL on
// CUDA): one for the forward pass's collectives, one for the gradient buckets.
//
//   auto world = dist::World::join(config.dist, device);  // null when WORLD_SIZE is unset or 1
//
// While a World lives, dist::current() is its communicator. Each rank publishes a heartbeat
// and its step in the store; when a collective fails or times out (dist.timeout_s), the error
// names the rank that was lost: one whose heartbeat stopped (it died) or that is behind (it
// hangs). No rank waits forever.
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdlib>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#include <torch/nn/module.h>
#include <torch/types.h>
#if defined(USE_C10D_NCCL) && __has_include(<torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>)
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#define COMMERCEMM_HAS_NCCL 1
#endif

#include <commercemm/core/config.hpp>
#include <commercemm/core/error.hpp>
#include <commercemm/dist/communicator.hpp>
#include <commercemm/dist/environment.hpp>
#include <commercemm/dist/process_group.hpp>

namespace commercemm::dist {

namespace detail {

inline Error dist_error(const std::string& message) { return Error(Location{"dist", 0, ""}, message); }

inline std::string first_line(const std::string& text) { return text.substr(0, text.find('\n')); }

// A store client (or, on rank 0 without torchrun's agent, the server) under `prefix`.
// `rendezvous`: this connection counts as the rank's arrival (the server waits for all).
inline c10::intrusive_ptr<c10d::Store> connect(const Environment& env, bool server, bool rendezvous,
                                               std::chrono::milliseconds timeout, const std::string& prefix) {
  c10d::TCPStoreOptions options;
  options.port = static_cast<std::uint16_t>(env.master_port);
  options.isServer = server;
  // A client counts as arrived only when it knows the world size (TCPStore skips it otherwise).
  if (server || rendezvous) options.numWorkers = static_cast<std::size_t>(env.world_size);
  options.waitWorkers = server || rendezvous;
  options.timeout = timeout;
  c10::intrusive_ptr<c10d::Store> store = c10::make_intrusive<c10d::TCPStore>(env.master_addr, options);
  const std::string root = env.agent_store ? "/worker/attempt_" + std::to_string(env.restart_count) : "";
  return c10::make_intrusive<c10d::PrefixStore>(root + "/commercemm/" + prefix, store);
}

inline std::string as_text(const std::vector<std::uint8_t>& bytes) { return {bytes.begin(), bytes.end()}; }
inline std::vector<std::uint8_t> as_bytes(const std::string& text) { return {text.begin(), text.end()}; }

}  // namespace detail

/// Each rank's heartbeat and step in the store, and the diagnosis of a failed collective.
class Liveness {
 public:
  Liveness(Environment env, std::chrono::milliseconds interval)
      : env_(std::move(env)), interval_(interval), store_(detail::connect(env_, false, false, interval * 20, "alive")) {
    beat();
    thread_ = std::thread([this] { run(); });
  }
  ~Liveness() {
    {
      std::lock_guard lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  void note_step(std::int64_t step) { step_.store(step); }

  /// Which rank was lost, probed from the store: a stopped heartbeat, else a rank behind.
  std::string diagnose(const std::string& what) const {
    const std::string cause = "; the collective failed with: " + detail::first_line(what);
    std::string me = "rank " + std::to_string(env_.rank) + " at step " + std::to_string(step_.load());
    c10::intrusive_ptr<c10d::Store> probe;
    try {
      probe = detail::connect(env_, false, false, std::chrono::milliseconds(2000), "alive");
    } catch (const std::exception&) {
      return "lost the job's rendezvous store at " + env_.master_addr + ":" + std::to_string(env_.master_port) +
             (env_.agent_store ? " (torchrun's agent)" : " (hosted by rank 0): lost rank 0") + cause;
    }
    auto read = [&](int r) -> std::pair<std::int64_t, std::int64_t> {  // beats, step
      try {
        const auto key = std::to_string(r);
        if (!probe->check({key})) return {-1, -1};
        std::istringstream in(detail::as_text(probe->get(key)));
        std::int64_t beats = -1, step = -1;
        in >> beats >> step;
        return {beats, step};
      } catch (const std::exception&) {
        return {-1, -1};
      }
    };
    std::vector<std::pair<std::int64_t, std::int64_t>> first(static_cast<std::size_t>(env_.world_size));
    for (int r = 0; r < env_.world_size; ++r) first[static_cast<std::size_t>(r)] = read(r);
    std::this_thread::sleep_for(interval_ * 3);
    std::string dead, behind;
    for (int r = 0; r < env_.world_size; ++r) {
      if (r == env_.rank) continue;
      const auto [beats, step] = read(r);
      if (beats < 0 || beats == first[static_cast<std::size_t>(r)].first)
        dead += (dead.empty() ? "" : ", ") + std::to_string(r);
      else if (step < step_.load())
        behind += (behind.empty() ? "" : ", ") + std::to_string(r) + " (at step " + std::to_string(step) + ")";
    }
    if (!dead.empty()) return "lost rank " + dead + ": its heartbeat stopped (the process died, was killed or is frozen); " + me + cause;
    if (!behind.empty()) return "lost rank " + behind + ": it stopped making progress (hung); " + me + cause;
    return "a collective failed on " + me + " with every rank alive" + cause;
  }

 private:
  void beat() {
    store_->set(std::to_string(env_.rank),
                detail::as_bytes(std::to_string(beats_++) + " " + std::to_string(step_.load())));
  }
  void run() {
    std::unique_lock lock(mutex_);
    while (!cv_.wait_for(lock, interval_, [&] { return stopping_; })) {
      lock.unlock();  // the store round trip must not hold up the destructor
      try {
        beat();
      } catch (const std::exception&) {
        return;  // the store is gone: the job is ending, or the failure is diagnosed elsewhere
      }
      lock.lock();
    }
  }

  Environment env_;
  std::chrono::milliseconds interval_;
  c10::intrusive_ptr<c10d::Store> store_;
  std::atomic<std::int64_t> step_{0};
  std::int64_t beats_ = 0;
  std::mutex mutex_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::thread thread_;
};

class World {
 public:
  /// Joins the job the environment describes, or returns null for a single process.
  static std::unique_ptr<World> join(const DistConfig& config, const torch::Device& device) {
    const auto env = environment();
    if (!env.distributed()) return nullptr;
    return std::unique_ptr<World>(new World(env, config, device));
  }
  ~World() {
    active() = {};
    liveness_.reset();
  }
  World(const World&) = delete;
  World& operator=(const World&) = delete;

  const Environment& env() const { return env_; }
  int rank() const { return env_.rank; }
  int size() const { return env_.world_size; }
  Communicator& collectives() { return *collectives_; }
  Communicator& gradients() { return *gradients_; }
  const std::string& backend() const { return backend_; }

  /// Published with the heartbeat, for the diagnosis of a hung rank.
  void note_step(std::int64_t step) { liveness_->note_step(step); }

 private:
  World(Environment env, const DistConfig& config, const torch::Device& device) : env_(std::move(env)) {
    const auto timeout = std::chrono::milliseconds(static_cast<std::int64_t>(config.timeout_s * 1000));
    backend_ = config.backend == "auto" ? (device.is_cuda() ? "nccl" : "gloo") : config.backend;
    const bool server = !env_.agent_store && env_.rank == 0;
    c10::intrusive_ptr<c10d::Store> main, grads;
    try {
      main = detail::connect(env_, server, !env_.agent_store, timeout, "collectives");
      grads = detail::connect(env_, false, false, timeout, "gradients");
    } catch (const std::exception& e) {
      throw detail::dist_error("rank " + std::to_string(env_.rank) + ": the rendezvous at " + env_.master_addr + ":" +
                               std::to_string(env_.master_port) + " did not complete within dist.timeout_s = " +
                               std::to_string(config.timeout_s) + " s (are all " + std::to_string(env_.world_size) +
                               " ranks started, with the same MASTER_ADDR and MASTER_PORT?): " + detail::first_line(e.what()));
    }
    // Half a second, or finer for short timeouts: a diagnosis takes three beats.
    const auto interval = std::min(std::chrono::milliseconds(500), std::max(std::chrono::milliseconds(50), timeout / 20));
    liveness_ = std::make_unique<Liveness>(env_, interval);
    // The collectives time out early enough that the diagnosis still ends within timeout_s.
    const auto collective_timeout = std::max(std::chrono::milliseconds(1000), timeout - interval * 4);
    Diagnose diagnose = [this](const std::string& what) { return liveness_->diagnose(what); };
    if (backend_ == "gloo") {
      collectives_ = make_gloo(main, collective_timeout, diagnose);
      gradients_ = make_gloo(grads, collective_timeout, diagnose);
    } else if (backend_ == "nccl") {
#ifdef COMMERCEMM_HAS_NCCL
      // Blocking waits make a failed NCCL collective throw in wait(), where it is diagnosed,
      // instead of surfacing later in the watchdog's abort.
      for (const char* name : {"TORCH_NCCL_ASYNC_ERROR_HANDLING", "NCCL_ASYNC_ERROR_HANDLING", "TORCH_NCCL_BLOCKING_WAIT",
                               "NCCL_BLOCKING_WAIT"})
        setenv(name, "1", 0);
      collectives_ = make_nccl(main, collective_timeout, device, diagnose);
      gradients_ = make_nccl(grads, collective_timeout, device, diagnose);
#else
      throw Error(Location{"", 0, "dist.backend"}, "\"nccl\" needs a LibTorch built with CUDA and NCCL; this one has none");
#endif
    } else {
      throw Error(Location{"", 0, "dist.backend"}, "must be \"auto\", \"gloo\" or \"nccl\", got \"" + backend_ + "\"");
    }
    active() = {collectives_.get(), gradients_.get(), [this](std::int64_t step) { liveness_->note_step(step); }};
  }

  std::unique_ptr<Communicator> make_gloo(const c10::intrusive_ptr<c10d::Store>& store, std::chrono::milliseconds timeout,
                                          const Diagnose& diagnose) {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    const char* interface = std::getenv("GLOO_SOCKET_IFNAME");
    const bool loopback = env_.master_addr == "127.0.0.1" || env_.master_addr == "localhost" || env_.master_addr == "::1";
    if (interface && *interface) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(interface));
    else if (loopback) options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname("127.0.0.1"));
    else options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    c10::intrusive_ptr<c10d::ProcessGroupGloo> group;
    try {
      group = c10::make_intrusive<c10d::ProcessGroupGloo>(store, env_.rank, env_.world_size, options);
    } catch (const std::exception& e) {
      throw detail::dist_error(diagnose(e.what()));
    }
    return std::make_unique<ProcessGroupCommunicator<c10d::ProcessGroupGloo>>(group, torch::Device(torch::kCPU), diagnose);
  }
#ifdef COMMERCEMM_HAS_NCCL
  std::unique_ptr<Communicator> make_nccl(const c10::intrusive_ptr<c10d::Store>& store, std::chrono::milliseconds timeout,
                                          const torch::Device& device, const Diagnose& diagnose) {
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    auto group = c10::make_intrusive<c10d::ProcessGroupNCCL>(store, env_.rank, env_.world_size, options);
    return std::make_unique<ProcessGroupCommunicator<c10d::ProcessGroupNCCL>>(group, device, diagnose);
  }
#endif

  Environment env_;
  std::string backend_;
  std::unique_ptr<Liveness> liveness_;
  std::unique_ptr<Communicator> collectives_, gradients_;
};

}  // namespace commercemm::dist
