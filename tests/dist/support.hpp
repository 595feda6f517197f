#pragma once
// The distributed tests run as two ranks of one job (tests/dist/run_ranks.sh starts them on
// loopback): a real TCPStore rendezvous and real Gloo process groups. Each rank also computes
// the single-process reference itself, inside dist::LocalScope, and compares.
#include <boost/test/unit_test.hpp>

#include <cstdlib>
#include <memory>

#include <commercemm/core/config.hpp>
#include <commercemm/dist/world.hpp>

namespace dist_test {

struct JoinedWorld {
  JoinedWorld() {
    commercemm::DistConfig config;
    config.timeout_s = 120;
    world = commercemm::dist::World::join(config, torch::Device(torch::kCPU));
    if (!world || world->size() != 2)
      throw std::runtime_error("run these tests as two ranks: tests/dist/run_ranks.sh 2 " +
                               std::string("commercemm_dist_tests"));
  }
  static inline std::unique_ptr<commercemm::dist::World> world;
};

inline commercemm::dist::World& world() { return *JoinedWorld::world; }

}  // namespace dist_test
