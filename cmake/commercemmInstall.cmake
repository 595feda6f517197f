# cmake --install puts the headers, the exported target and a relocatable package config
# under the prefix; find_package(commercemm CONFIG) then works like the FetchContent route.
include_guard(GLOBAL)
include(CMakePackageConfigHelpers)

set(COMMERCEMM_CMAKE_DIR "${CMAKE_INSTALL_DATADIR}/cmake/commercemm")
install(DIRECTORY "${PROJECT_SOURCE_DIR}/include/" DESTINATION "${CMAKE_INSTALL_INCLUDEDIR}")
install(TARGETS commercemm EXPORT commercemmTargets)
install(EXPORT commercemmTargets NAMESPACE commercemm:: DESTINATION "${COMMERCEMM_CMAKE_DIR}")
configure_package_config_file(
  "${PROJECT_SOURCE_DIR}/cmake/commercemmConfig.cmake.in"
  "${PROJECT_BINARY_DIR}/commercemmConfig.cmake"
  INSTALL_DESTINATION "${COMMERCEMM_CMAKE_DIR}")
# Header-only: one package serves every architecture.
write_basic_package_version_file(
  "${PROJECT_BINARY_DIR}/commercemmConfigVersion.cmake"
  COMPATIBILITY SameMinorVersion ARCH_INDEPENDENT)
# commercemm::compiled is built in the consumer's tree from the installed source.
install(FILES "${PROJECT_SOURCE_DIR}/src/compiled.cpp" DESTINATION "${CMAKE_INSTALL_DATADIR}/commercemm")
install(FILES
  "${PROJECT_SOURCE_DIR}/cmake/commercemmCompiled.cmake"
  "${PROJECT_BINARY_DIR}/commercemmConfig.cmake"
  "${PROJECT_BINARY_DIR}/commercemmConfigVersion.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/commercemmDependencies.cmake"
  "${PROJECT_SOURCE_DIR}/cmake/commercemmBlasCheck.cmake"
  DESTINATION "${COMMERCEMM_CMAKE_DIR}")
