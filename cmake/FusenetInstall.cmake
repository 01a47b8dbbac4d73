# Installation: header, shared + static library, the fusenet tool, two pkg-config
# files (fusenet: the shared library; fusenet-static: libfusenet.a and what it
# needs) and a CMake package (fusenet::fusenet, fusenet::fusenet_static). The
# tools library (src/tools) is internal and not installed.
# Included from the top-level CMakeLists.txt after the targets are defined.
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(FUSENET_INSTALL_CMAKEDIR ${CMAKE_INSTALL_LIBDIR}/cmake/fusenet CACHE STRING
  "Where the CMake package files of fusenet are installed, relative to the prefix")
mark_as_advanced(FUSENET_INSTALL_CMAKEDIR)

set_target_properties(fusenet_shared PROPERTIES EXPORT_NAME fusenet)
set_target_properties(fusenet_static PROPERTIES EXPORT_NAME fusenet_static)

install(FILES ${PROJECT_SOURCE_DIR}/include/fusenet.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR} COMPONENT Development)
install(TARGETS fusenet_shared EXPORT fusenetTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Runtime NAMELINK_COMPONENT Development
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT Runtime)
install(TARGETS fusenet_static EXPORT fusenetStaticTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT Development)
install(TARGETS fusenet_cli
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT Runtime)

# ---- CMake package -----------------------------------------------------------
# Two export sets: the shared library needs nothing from its consumers; the
# static one carries its private link dependencies (DNNL::dnnl, ZLIB::ZLIB,
# JPEG::JPEG, PkgConfig::LIBZIP, OpenMP::OpenMP_C, m), which fusenetConfig.cmake looks up only
# when the "static" component is asked for.
install(EXPORT fusenetTargets NAMESPACE fusenet:: FILE fusenetTargets.cmake
  DESTINATION ${FUSENET_INSTALL_CMAKEDIR} COMPONENT Development)
install(EXPORT fusenetStaticTargets NAMESPACE fusenet:: FILE fusenetStaticTargets.cmake
  DESTINATION ${FUSENET_INSTALL_CMAKEDIR} COMPONENT Development)
configure_package_config_file(${CMAKE_CURRENT_LIST_DIR}/fusenetConfig.cmake.in
  ${PROJECT_BINARY_DIR}/cmake/fusenetConfig.cmake
  INSTALL_DESTINATION ${FUSENET_INSTALL_CMAKEDIR})
# The soname carries the major version only, so any 0.x satisfies a request for 0.y <= x.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/cmake/fusenetConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/cmake/fusenetConfig.cmake
  ${PROJECT_BINARY_DIR}/cmake/fusenetConfigVersion.cmake
  DESTINATION ${FUSENET_INSTALL_CMAKEDIR} COMPONENT Development)

# ---- pkg-config ----------------------------------------------------------------
# What a static link of libfusenet.a needs is derived from what the library
# itself links: oneDNN, zlib, libjpeg, libzip, OpenMP, libm (no libhdf5: the library
# reads HDF5 itself).
function(_fusenet_pc_link_flags out)
  set(flags "")
  foreach(item IN LISTS ARGN)
    if(TARGET ${item})
      get_target_property(type ${item} TYPE)
      get_target_property(loc ${item} IMPORTED_LOCATION)
      if(NOT loc)
        get_target_property(configs ${item} IMPORTED_CONFIGURATIONS)
        if(configs)
          list(GET configs 0 config)
          get_target_property(loc ${item} IMPORTED_LOCATION_${config})
        endif()
      endif()
      if(loc)
        set(item ${loc})
      elseif(type STREQUAL "INTERFACE_LIBRARY")
        # e.g. OpenMP::OpenMP_C: link options/libraries are in its interface
        get_target_property(opts ${item} INTERFACE_LINK_LIBRARIES)
        if(opts)
          _fusenet_pc_link_flags(sub ${opts})
          list(APPEND flags ${sub})
        endif()
        continue()
      else()
        continue()
      endif()
    endif()
    if(item MATCHES "^-")
      list(APPEND flags ${item})
    elseif(IS_ABSOLUTE "${item}")
      get_filename_component(dir "${item}" DIRECTORY)
      get_filename_component(file "${item}" NAME)
      if(file MATCHES "^lib(.+)\\.(so|a)(\\.[0-9.]+)?$")
        list(FIND CMAKE_C_IMPLICIT_LINK_DIRECTORIES "${dir}" implicit)
        if(implicit EQUAL -1)
          list(APPEND flags "-L${dir}")
        endif()
        list(APPEND flags "-l${CMAKE_MATCH_1}")
      else()
        list(APPEND flags "${item}")
      endif()
    elseif(item MATCHES "^\\$<")
      continue()
    else()
      list(APPEND flags "-l${item}")
    endif()
  endforeach()
  set(${out} ${flags} PARENT_SCOPE)
endfunction()

_fusenet_pc_link_flags(_fn_pc_libs DNNL::dnnl ZLIB::ZLIB JPEG::JPEG PkgConfig::LIBZIP)
if(OpenMP_C_FLAGS)
  separate_arguments(_fn_omp UNIX_COMMAND "${OpenMP_C_FLAGS}")
  list(APPEND _fn_pc_libs ${_fn_omp})   # -fopenmp: gomp (and pthread) with GCC
else()
  _fusenet_pc_link_flags(_fn_omp ${OpenMP_C_LIBRARIES})
  list(APPEND _fn_pc_libs ${_fn_omp})
endif()
list(APPEND _fn_pc_libs -lm)
list(REMOVE_DUPLICATES _fn_pc_libs)
list(JOIN _fn_pc_libs " " FUSENET_PC_LIBS_PRIVATE)
unset(_fn_pc_libs)
unset(_fn_omp)

foreach(_fn_kind LIBDIR INCLUDEDIR)
  if(IS_ABSOLUTE "${CMAKE_INSTALL_${_fn_kind}}")
    set(FUSENET_PC_${_fn_kind} "${CMAKE_INSTALL_${_fn_kind}}")
  else()
    set(FUSENET_PC_${_fn_kind} "\${prefix}/${CMAKE_INSTALL_${_fn_kind}}")
  endif()
endforeach()
unset(_fn_kind)

# The prefix is only known when installing (cmake --install --prefix P), so
# each file is configured twice: now with everything but the prefix, then at
# install time with the prefix the install uses.
set(FUSENET_PC_PREFIX "@FUSENET_PC_PREFIX@")
foreach(_fn_pc fusenet fusenet-static)
  configure_file(${CMAKE_CURRENT_LIST_DIR}/${_fn_pc}.pc.in ${PROJECT_BINARY_DIR}/cmake/${_fn_pc}.pc.in @ONLY)
  install(CODE "
    set(FUSENET_PC_PREFIX \"\${CMAKE_INSTALL_PREFIX}\")
    configure_file(\"${PROJECT_BINARY_DIR}/cmake/${_fn_pc}.pc.in\"
      \"${PROJECT_BINARY_DIR}/cmake/install/${_fn_pc}.pc\" @ONLY)
    unset(FUSENET_PC_PREFIX)
  " COMPONENT Development)
  install(FILES ${PROJECT_BINARY_DIR}/cmake/install/${_fn_pc}.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT Development)
endforeach()
unset(FUSENET_PC_PREFIX)
unset(_fn_pc)
