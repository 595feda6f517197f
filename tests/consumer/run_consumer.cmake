# cmake -P script behind the consumer tests: each step must succeed or the test fails.
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " cmd)
    message(FATAL_ERROR "consumer test step failed (${rc}): ${cmd}")
  endif()
endfunction()

file(REMOVE_RECURSE "${WORK}")
if(STEP STREQUAL "fetchcontent")
  run(${CMAKE_COMMAND} -S "${PROJECT_DIR}" -B "${WORK}/build" ${ARGS}
      -DCONSUMER_USE_FETCHCONTENT=ON
      "-DFETCHCONTENT_SOURCE_DIR_COMMERCEMM=${SOURCE}"
      -DCOMMERCEMM_SYSTEM_INCLUDES=OFF)   # our headers get the consumer's -Werror flags
elseif(STEP STREQUAL "find_package")
  run(${CMAKE_COMMAND} -S "${SOURCE}" -B "${WORK}/lib" -DCMAKE_BUILD_TYPE=Release
      -DCOMMERCEMM_BUILD_TESTS=OFF -DCOMMERCEMM_BUILD_EXAMPLES=OFF
      -DCOMMERCEMM_BUILD_BENCHMARKS=OFF -DCOMMERCEMM_INSTALL=ON
      "-DCMAKE_INSTALL_PREFIX=${WORK}/prefix")
  run(${CMAKE_COMMAND} --install "${WORK}/lib")
  foreach(f include/commercemm/commercemm.hpp share/cmake/commercemm/commercemmConfig.cmake
            share/cmake/commercemm/commercemmConfigVersion.cmake)
    if(NOT EXISTS "${WORK}/prefix/${f}")
      message(FATAL_ERROR "install did not produce ${f}")
    endif()
  endforeach()
  run(${CMAKE_COMMAND} -S "${PROJECT_DIR}" -B "${WORK}/build" ${ARGS}
      -DCONSUMER_USE_FETCHCONTENT=OFF -DCONSUMER_COMPILED=ON "-DCMAKE_PREFIX_PATH=${WORK}/prefix")
else()
  message(FATAL_ERROR "unknown STEP '${STEP}'")
endif()
run(${CMAKE_COMMAND} --build "${WORK}/build")
run("${WORK}/build/consumer")
