#pragma once
// The standard environment of a distributed launch, as torchrun, SLURM wrappers and Kubernetes
// operators set it: RANK, WORLD_SIZE, LOCAL_RANK, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT.
// WORLD_SIZE unset or 1 means a single process: no process group at all.
#include <cstdint>
#include <cstdlib>
#include <string>

#include <commercemm/core/error.hpp>

namespace commercemm::dist {

struct Environment {
  int rank = 0;
  int world_size = 1;
  int local_rank = 0;
  int local_world_size = 1;  ///< processes on this machine (threads are shared among them)
  std::string master_addr = "127.0.0.1";
  int master_port = 29500;
  /// Under torchrun the launcher's agent hosts the rendezvous store (every rank is a client)
  /// and keys live under /worker/attempt_<restart count>, as torch.distributed expects.
  bool agent_store = false;
  int restart_count = 0;

  bool distributed() const { return world_size > 1; }
};

namespace detail {
inline int env_int(const char* name, int fallback, int low, int high) {
  const char* text = std::getenv(name);
  if (!text || !*text) return fallback;
  char* end = nullptr;
  const long value = std::strtol(text, &end, 10);
  if (*end != '\0' || value < low || value > high)
    throw Error(Location{"environment", 0, name},
                std::string("must be an integer in [") + std::to_string(low) + ", " + std::to_string(high) + "], got \"" + text + "\"");
  return static_cast<int>(value);
}
}  // namespace detail

/// Reads the launch environment; malformed values are errors naming the variable.
inline Environment environment() {
  Environment e;
  e.world_size = detail::env_int("WORLD_SIZE", 1, 1, 1 << 20);
  if (!e.distributed()) return e;
  if (!std::getenv("RANK"))
    throw Error(Location{"environment", 0, "RANK"}, "WORLD_SIZE is " + std::to_string(e.world_size) +
                                                        " but RANK is not set (launch with torchrun, or set both)");
  e.rank = detail::env_int("RANK", 0, 0, e.world_size - 1);
  e.local_rank = detail::env_int("LOCAL_RANK", e.rank, 0, e.world_size - 1);
  e.local_world_size = detail::env_int("LOCAL_WORLD_SIZE", e.world_size, 1, e.world_size);
  if (const char* addr = std::getenv("MASTER_ADDR"); addr && *addr) e.master_addr = addr;
  e.master_port = detail::env_int("MASTER_PORT", 29500, 1, 65535);
  const char* agent = std::getenv("TORCHELASTIC_USE_AGENT_STORE");
  e.agent_store = agent && std::string(agent) == "True";
  e.restart_count = detail::env_int("TORCHELASTIC_RESTART_COUNT", 0, 0, 1 << 20);
  return e;
}

/// "[rank r] " while distributed (WORLD_SIZE > 1), else "": the prefix of every message a
/// rank prints, so interleaved logs say who spoke.
inline std::string rank_prefix() {
  try {
    const auto e = environment();
    return e.distributed() ? "[rank " + std::to_string(e.rank) + "] " : "";
  } catch (const Error&) {
    return "";
  }
}

}  // namespace commercemm::dist
