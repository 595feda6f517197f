#pragma once
// Helpers shared by the eval tests.
#include <string>

#include <commercemm/core/error.hpp>

#include "../data/support.hpp"

using data_test::TempDir;

/// The message of the commercemm::Error that `f` throws, or "(no error)".
template <class F> std::string error_of(F f) {
  try {
    f();
  } catch (const commercemm::Error& e) {
    return e.what();
  }
  return "(no error)";
}
