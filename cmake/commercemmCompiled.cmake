# commercemm::compiled: the library's recipe-independent parts (config I/O, tokenizers, image
# decoding, plots, ...) compiled once from `source` (src/compiled.cpp). A target that links it
# gets COMMERCEMM_SEPARATE_COMPILATION, so its own TUs only declare those parts: ablation
# binaries compile faster. Built only when something links it; commercemm::commercemm alone
# stays header-only. Defined both in the source tree and by the installed package config.
include_guard(GLOBAL)

function(commercemm_add_compiled_library source)
  add_library(commercemm_compiled STATIC EXCLUDE_FROM_ALL "${source}")
  add_library(commercemm::compiled ALIAS commercemm_compiled)
  target_link_libraries(commercemm_compiled PUBLIC commercemm::commercemm)
  target_compile_definitions(commercemm_compiled PUBLIC COMMERCEMM_SEPARATE_COMPILATION)
  set_target_properties(commercemm_compiled PROPERTIES POSITION_INDEPENDENT_CODE ON)
endfunction()
