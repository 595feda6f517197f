# Settings for our own tests, examples and benchmarks (never seen by consumers).
#
# Build speed on a 2-core machine is dominated by parsing LibTorch's headers (~9-13 s and
# ~1 GB per TU with g++). One precompiled header of the narrow LibTorch headers, built once and
# reused by every target, brings a TU down to ~3 s; ccache makes rebuilds of untouched TUs free.
# (clang 14 cannot precompile LibTorch 1.13's headers in C++20 mode, so g++ is the default.)
include_guard(GLOBAL)

find_program(COMMERCEMM_CCACHE ccache)
if(COMMERCEMM_CCACHE AND NOT CMAKE_CXX_COMPILER_LAUNCHER)
  # ccache refuses precompiled headers unless told which checks to relax.
  set(CMAKE_CXX_COMPILER_LAUNCHER ${CMAKE_COMMAND} -E env
      "CCACHE_SLOPPINESS=pch_defines,time_macros,include_file_mtime,include_file_ctime"
      ${COMMERCEMM_CCACHE})
endif()

set(COMMERCEMM_WARNINGS -Wall -Wextra -Wpedantic)
option(COMMERCEMM_WERROR "Treat warnings in our own targets as errors" ${PROJECT_IS_TOP_LEVEL})
if(COMMERCEMM_WERROR)
  list(APPEND COMMERCEMM_WARNINGS -Werror)
endif()
option(COMMERCEMM_PCH "Share one precompiled header of LibTorch across our targets" ON)

# -DCOMMERCEMM_SANITIZE=address,undefined builds our tests, examples and benchmarks with ASan
# and UBSan (LibTorch itself is not instrumented). Any UBSan finding aborts the test; the run
# settings live in scripts/test-sanitized.
set(COMMERCEMM_SANITIZE "" CACHE STRING "Sanitizers for our own targets, e.g. address,undefined")
set(COMMERCEMM_SANITIZE_FLAGS)
if(COMMERCEMM_SANITIZE)
  set(COMMERCEMM_SANITIZE_FLAGS -fsanitize=${COMMERCEMM_SANITIZE} -fno-omit-frame-pointer)
  if(COMMERCEMM_SANITIZE MATCHES "undefined")
    # vptr checks need RTTI of every class a pointer may hold, LibTorch's included: off.
    list(APPEND COMMERCEMM_SANITIZE_FLAGS -fno-sanitize-recover=undefined -fno-sanitize=vptr)
  endif()
endif()

# Where scripts/fetch-packages unpacks the npm packages that the data tests, benchmarks and
# tools read. Defined identically for every target: g++ rejects a shared PCH when -D differs.
set(COMMERCEMM_PACKAGES_DIR "${PROJECT_SOURCE_DIR}/.packages" CACHE PATH
    "Where scripts/fetch-packages unpacks the npm packages the data tests read")
# (The Boost ones are what Boost::unit_test_framework adds to the test targets.)
set(COMMERCEMM_COMMON_DEFINITIONS
    BOOST_TEST_DYN_LINK BOOST_ALL_NO_LIB BOOST_UNIT_TEST_FRAMEWORK_DYN_LINK
    COMMERCEMM_SOURCE_DIR="${PROJECT_SOURCE_DIR}"
    COMMERCEMM_PACKAGES_DIR="${COMMERCEMM_PACKAGES_DIR}")

# Optimized builds compile the tests at -O1: a third less time than -O3 for each TU (most of
# CI's build), while the tests' running time is LibTorch's kernels, which -O1 does not touch.
# The binaries the command-line tests run (examples/) keep the build type's flags.
set(COMMERCEMM_TEST_OPTIMIZATION $<$<CONFIG:Release,RelWithDebInfo,MinSizeRel>:-O1>)

# Shares the precompiled header of `flavor` with target `name`: the first target of a flavor
# builds it, the others reuse it. Targets compiled at another -O need a PCH of their own (g++
# crashes on a PCH built at -O1 used at -O3), hence a PCH per flavor: "test" and "default".
function(commercemm_share_pch name flavor)
  if(NOT COMMERCEMM_PCH)
    return()
  endif()
  get_property(owner GLOBAL PROPERTY COMMERCEMM_PCH_OWNER_${flavor})
  if(owner)
    target_precompile_headers(${name} REUSE_FROM ${owner})
  else()
    target_precompile_headers(${name} PRIVATE "${PROJECT_SOURCE_DIR}/cmake/commercemm_pch.hpp")
    set_property(GLOBAL PROPERTY COMMERCEMM_PCH_OWNER_${flavor} ${name})
  endif()
endfunction()

# Our LibTorch binaries link commercemm::compiled, as users with several binaries would; the
# header-only route is built by the consumer tests, the tokenizer tests and the fuzzers.
target_compile_options(commercemm_compiled PRIVATE ${COMMERCEMM_WARNINGS})
if(COMMERCEMM_SANITIZE_FLAGS)  # as for the executables below
  target_compile_options(commercemm_compiled PRIVATE ${COMMERCEMM_SANITIZE_FLAGS} -Wno-maybe-uninitialized)
endif()

# commercemm_add_executable(NAME SOURCES... [TORCH] [TEST])
# TORCH marks a target whose TUs include LibTorch: it shares the precompiled header and links
# commercemm::compiled.
# TEST marks a test binary: -O1 in optimized builds (COMMERCEMM_TEST_OPTIMIZATION).
function(commercemm_add_executable name)
  cmake_parse_arguments(arg "TORCH;TEST" "" "" ${ARGN})
  add_executable(${name} ${arg_UNPARSED_ARGUMENTS})
  if(arg_TORCH)
    target_link_libraries(${name} PRIVATE commercemm::compiled)
  else()  # the tokenizer tests: header-only, so their sanitized build compiles no LibTorch
    target_link_libraries(${name} PRIVATE commercemm::commercemm)
  endif()
  target_compile_options(${name} PRIVATE ${COMMERCEMM_WARNINGS})
  target_compile_definitions(${name} PRIVATE ${COMMERCEMM_COMMON_DEFINITIONS})
  if(COMMERCEMM_SANITIZE_FLAGS)
    # ASan's instrumentation makes g++ 12 see "maybe uninitialized" values in LibTorch's
    # c10::optional that are not (false positives, fatal under -Werror).
    target_compile_options(${name} PRIVATE ${COMMERCEMM_SANITIZE_FLAGS} -Wno-maybe-uninitialized)
    target_link_options(${name} PRIVATE ${COMMERCEMM_SANITIZE_FLAGS})
  endif()
  set(flavor default)
  if(arg_TEST)
    target_compile_options(${name} PRIVATE ${COMMERCEMM_TEST_OPTIMIZATION})
    set(flavor test)
  endif()
  if(arg_TORCH)
    commercemm_share_pch(${name} ${flavor})
  endif()
endfunction()

# commercemm_add_compile_check(NAME SOURCES...)
# Sources that must compile, checked without generating code (g++ -fsyntax-only instantiates
# every template all the same, in a quarter of a -O3 build's time): an object library outside
# the default build, with the tests' PCH (which a test target must have built already).
# Its "build" is the check; nothing is written, so it reruns whenever asked (CTest asks once a run).
function(commercemm_add_compile_check name)
  add_library(${name} OBJECT EXCLUDE_FROM_ALL ${ARGN})
  target_link_libraries(${name} PRIVATE commercemm::compiled)  # its definitions, for the shared PCH
  target_compile_options(${name} PRIVATE ${COMMERCEMM_WARNINGS} ${COMMERCEMM_TEST_OPTIMIZATION} -fsyntax-only)
  target_compile_definitions(${name} PRIVATE ${COMMERCEMM_COMMON_DEFINITIONS})
  if(COMMERCEMM_PCH)
    get_property(owner GLOBAL PROPERTY COMMERCEMM_PCH_OWNER_test)
    if(NOT owner)
      message(FATAL_ERROR "commercemm_add_compile_check(${name}): no test target has built the PCH yet")
    endif()
    target_precompile_headers(${name} REUSE_FROM ${owner})
  endif()
endfunction()
