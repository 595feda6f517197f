#pragma once
// Header-only, or compiled once. By default every function is defined in the headers. A binary
// that links the CMake target commercemm::compiled gets COMMERCEMM_SEPARATE_COMPILATION: the
// parts that do not depend on a recipe (config I/O, tokenizers, image decoding, plots, ...)
// are then only declared by their headers and compiled once in that library, so the binary's
// own TUs neither parse those parts' dependencies (toml++, stb) nor generate their code.
//
// A header with such parts declares them COMMERCEMM_DECL and, at its end, includes its
// impl/<name>.ipp (the definitions, also COMMERCEMM_DECL) unless compiled separately;
// src/compiled.cpp includes every .ipp.
#ifdef COMMERCEMM_SEPARATE_COMPILATION
#define COMMERCEMM_DECL
#else
#define COMMERCEMM_DECL inline
#endif
