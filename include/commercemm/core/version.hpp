#pragma once
#define COMMERCEMM_VERSION_MAJOR 0
#define COMMERCEMM_VERSION_MINOR 1
#define COMMERCEMM_VERSION_PATCH 0

namespace commercemm {
inline constexpr const char* version = "0.1.0";
}  // namespace commercemm
