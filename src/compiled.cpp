// commercemm::compiled: the parts of the library that no recipe changes, compiled once, so
// that a binary's own TUs compile only what its recipe instantiates (see core/linkage.hpp).
#ifndef COMMERCEMM_SEPARATE_COMPILATION
#error "compile with COMMERCEMM_SEPARATE_COMPILATION (the CMake target commercemm::compiled sets it)"
#endif
#include <commercemm/cli/impl/plot.ipp>
#include <commercemm/cli/impl/run_commands.ipp>
#include <commercemm/core/impl/config_io.ipp>
#include <commercemm/data/impl/image_decode.ipp>
#include <commercemm/data/impl/manifest.ipp>
#include <commercemm/eval/impl/search.ipp>
#include <commercemm/eval/impl/side_store.ipp>
#include <commercemm/train/impl/tokenizer_setup.ipp>
