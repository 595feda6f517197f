# LibTorch on Debian does its matrix products through whatever libblas.so.3 the alternatives
# system points at. The reference BLAS makes training about 20x slower than OpenBLAS, and
# nothing else would tell the user, so say it at configure time.
include_guard(GLOBAL)

function(commercemm_check_blas)
  if(NOT TARGET torch_cpu)
    return()
  endif()
  get_target_property(_torch_cpu torch_cpu IMPORTED_LOCATION)
  if(NOT _torch_cpu)
    get_target_property(_configs torch_cpu IMPORTED_CONFIGURATIONS)
    foreach(_config IN LISTS _configs)
      get_target_property(_torch_cpu torch_cpu IMPORTED_LOCATION_${_config})
      if(_torch_cpu)
        break()
      endif()
    endforeach()
  endif()
  find_program(_ldd ldd)
  if(NOT _torch_cpu OR NOT _ldd)
    return()
  endif()
  execute_process(COMMAND ${_ldd} ${_torch_cpu} OUTPUT_VARIABLE _deps ERROR_QUIET)
  if(NOT _deps MATCHES "libblas\\.so[^ ]* => ([^ ]+)")
    return()                          # MKL or a static BLAS: nothing to check
  endif()
  get_filename_component(_blas "${CMAKE_MATCH_1}" REALPATH)
  if(NOT _blas MATCHES "openblas|blis|mkl|atlas")
    message(WARNING
      "LibTorch uses the reference BLAS (${_blas}); training will be about 20x slower.\n"
      "  Debian: apt-get install libopenblas0-pthread")
  else()
    message(STATUS "commercemm: BLAS is ${_blas}")
  endif()
endfunction()
