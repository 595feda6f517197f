# Finds what commercemm's headers need and gives each a target. Included by our own
# CMakeLists.txt and by the installed commercemmConfig.cmake, so a consumer of the installed
# package resolves the same targets the build tree used.
include_guard(GLOBAL)
include(CMakeFindDependencyMacro)

# Under FetchContent we are a subdirectory, and imported targets are visible only in the
# directory that found them; the consumer links commercemm from its own directory, so every
# target found here must be global.
set(_commercemm_saved_targets_global ${CMAKE_FIND_PACKAGE_TARGETS_GLOBAL})
set(CMAKE_FIND_PACKAGE_TARGETS_GLOBAL ON)

# LibTorch. Debian installs its config under the multiarch cmake directory; a pip or
# downloaded LibTorch is found through CMAKE_PREFIX_PATH or Torch_DIR.
if(NOT TARGET torch)
  find_package(Torch QUIET CONFIG)
  if(NOT Torch_FOUND)
    message(FATAL_ERROR
      "commercemm needs LibTorch and CMake could not find it.\n"
      "  Debian 12: apt-get install libtorch-dev libopenblas0-pthread\n"
      "  Elsewhere: pass -DCMAKE_PREFIX_PATH=<libtorch dir> or -DTorch_DIR=<dir holding TorchConfig.cmake>.")
  endif()
endif()

find_package(Threads REQUIRED)
find_package(ZLIB QUIET)                 # Fashion-MNIST ships gzip-compressed IDX files
if(NOT ZLIB_FOUND)
  message(FATAL_ERROR "commercemm needs zlib (Debian: apt-get install zlib1g-dev).")
endif()
find_package(nlohmann_json 3.9 QUIET CONFIG)
if(NOT nlohmann_json_FOUND)
  message(FATAL_ERROR "commercemm needs nlohmann-json (Debian: apt-get install nlohmann-json3-dev).")
endif()
find_package(CLI11 QUIET CONFIG)
if(NOT CLI11_FOUND)
  message(FATAL_ERROR "commercemm needs CLI11 (Debian: apt-get install libcli11-dev).")
endif()

# FAISS, for retrieval over large catalogues (eval/search.hpp). Debian ships it as a static
# library whose exported target links OpenMP::OpenMP_CXX and the system BLAS/LAPACK but does not
# find OpenMP itself, so that target has to exist before faiss is used.
if(NOT TARGET faiss)
  find_package(OpenMP QUIET COMPONENTS CXX)
  if(NOT OpenMP_CXX_FOUND)
    message(FATAL_ERROR "commercemm needs OpenMP for FAISS (g++ ships it; for clang, Debian: apt-get install libomp-dev).")
  endif()
  find_package(faiss QUIET CONFIG)
  if(NOT faiss_FOUND)
    message(FATAL_ERROR
      "commercemm needs FAISS and CMake could not find it.\n"
      "  Debian 12: apt-get install libfaiss-dev\n"
      "  Elsewhere: pass -Dfaiss_DIR=<dir holding faiss-config.cmake>.")
  endif()
endif()

# toml++ is used as a plain header (TOML_HEADER_ONLY), so no library is linked; stb's image
# decoder is compiled into each TU as static functions. Both only need their include path.
function(_commercemm_header_target target header suffix hint)
  if(TARGET ${target})
    return()
  endif()
  find_path(_dir ${header} PATH_SUFFIXES ${suffix})
  if(NOT _dir)
    message(FATAL_ERROR "commercemm needs ${header} (${hint}).")
  endif()
  add_library(${target} INTERFACE IMPORTED GLOBAL)
  set_target_properties(${target} PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${_dir}")
  unset(_dir CACHE)
endfunction()
_commercemm_header_target(commercemm::tomlplusplus toml++/toml.h "" "Debian: apt-get install libtomlplusplus-dev")
_commercemm_header_target(commercemm::stb stb_image.h stb "Debian: apt-get install libstb-dev")

if(NOT TARGET commercemm::utf8proc)
  find_path(COMMERCEMM_UTF8PROC_INCLUDE_DIR utf8proc.h)
  find_library(COMMERCEMM_UTF8PROC_LIBRARY utf8proc)
  if(NOT COMMERCEMM_UTF8PROC_INCLUDE_DIR OR NOT COMMERCEMM_UTF8PROC_LIBRARY)
    message(FATAL_ERROR "commercemm needs utf8proc (Debian: apt-get install libutf8proc-dev).")
  endif()
  add_library(commercemm::utf8proc UNKNOWN IMPORTED GLOBAL)
  set_target_properties(commercemm::utf8proc PROPERTIES
    IMPORTED_LOCATION "${COMMERCEMM_UTF8PROC_LIBRARY}"
    INTERFACE_INCLUDE_DIRECTORIES "${COMMERCEMM_UTF8PROC_INCLUDE_DIR}")
endif()

set(CMAKE_FIND_PACKAGE_TARGETS_GLOBAL ${_commercemm_saved_targets_global})
