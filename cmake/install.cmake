# Installation: headers under include/tokensampler/, the static libraries, the CMake
# package tokensampler (find_package(tokensampler CONFIG), components sampler and client),
# pkg-config files, the two binaries, and (for the Debian package only) the systemd unit
# and /etc/default/tokensampler. Included by the top-level CMakeLists.txt after every
# target exists.
#
# Install components:
#   dev     headers, static libraries, CMake package, pkg-config files
#   server  the tokensampler-server and tokensampler binaries
#   system  tokensampler.service and /etc/default/tokensampler: absolute paths, so they
#           are left out of a plain `cmake --install` and only go into the .deb
#           (cmake/package.cmake).
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

set(TOKENSAMPLER_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/tokensampler)

# Installed targets are named tokensampler::<EXPORT_NAME>, the same as the in-tree aliases.
set_target_properties(tokensampler_sampler PROPERTIES EXPORT_NAME sampler)
set_target_properties(tokensampler_proto PROPERTIES EXPORT_NAME proto)
set_target_properties(tokensampler_client PROPERTIES
  EXPORT_NAME client OUTPUT_NAME tokensampler_client)

# The sources include "sampler/...", "client/..." and "tokensampler/v1/..." from the repo
# root; installed, those live in include/tokensampler/ and include/ (so a user may write
# <tokensampler/sampler/sampler.h>).
# The headers are C++17, like every unit of the libraries.
foreach(_target tokensampler_sampler tokensampler_proto tokensampler_client)
  target_include_directories(${_target} PUBLIC
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
    $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/tokensampler>)
  target_compile_features(${_target} PUBLIC cxx_std_17)
endforeach()

# Public headers only: the kernels, stages and scratch memory (which need Highway) stay
# private to the library.
install(FILES
    sampler/draw.h sampler/exp.h sampler/half.h sampler/params.h
    sampler/processed_distribution.h sampler/sampler.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tokensampler/sampler COMPONENT dev)
install(FILES
    client/address.h client/client.h client/shared_memory.h
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tokensampler/client COMPONENT dev)
install(FILES
    ${PROJECT_BINARY_DIR}/proto/tokensampler/v1/sampler.pb.h
    ${PROJECT_BINARY_DIR}/proto/tokensampler/v1/sampler.grpc.pb.h
    proto/tokensampler/v1/sampler.proto
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/tokensampler/v1 COMPONENT dev)

# Two export sets, so that find_package(tokensampler COMPONENTS sampler) needs only
# abseil and Highway, not gRPC.
install(TARGETS tokensampler_sampler EXPORT tokensampler-sampler-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(TARGETS tokensampler_proto tokensampler_client EXPORT tokensampler-client-targets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR} COMPONENT dev)
install(EXPORT tokensampler-sampler-targets NAMESPACE tokensampler::
  DESTINATION ${TOKENSAMPLER_CMAKE_DIR} COMPONENT dev)
install(EXPORT tokensampler-client-targets NAMESPACE tokensampler::
  DESTINATION ${TOKENSAMPLER_CMAKE_DIR} COMPONENT dev)

configure_package_config_file(cmake/tokensamplerConfig.cmake.in
  ${PROJECT_BINARY_DIR}/tokensamplerConfig.cmake
  INSTALL_DESTINATION ${TOKENSAMPLER_CMAKE_DIR})
# 0.x: a minor version may break the API, so 0.1.x only satisfies requests for 0.1.
# From 1.0 on this becomes SameMajorVersion.
write_basic_package_version_file(${PROJECT_BINARY_DIR}/tokensamplerConfigVersion.cmake
  VERSION ${PROJECT_VERSION} COMPATIBILITY SameMinorVersion)
install(FILES
    ${PROJECT_BINARY_DIR}/tokensamplerConfig.cmake
    ${PROJECT_BINARY_DIR}/tokensamplerConfigVersion.cmake
  DESTINATION ${TOKENSAMPLER_CMAKE_DIR} COMPONENT dev)

# pkg-config: the libraries are static, so their dependencies are in Requires (not
# Requires.private) and show up in a plain `pkg-config --libs`. prefix is found from
# the .pc file's own place, so a staged or moved install works too.
file(RELATIVE_PATH TOKENSAMPLER_PC_TO_PREFIX
  /prefix/${CMAKE_INSTALL_LIBDIR}/pkgconfig /prefix)
foreach(_pc tokensampler-sampler tokensampler-client)
  configure_file(cmake/${_pc}.pc.in ${PROJECT_BINARY_DIR}/${_pc}.pc @ONLY)
  install(FILES ${PROJECT_BINARY_DIR}/${_pc}.pc
    DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig COMPONENT dev)
endforeach()

install(TARGETS tokensampler-server tokensampler
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR} COMPONENT server)
install(FILES deploy/debian/tokensampler.service
  DESTINATION /lib/systemd/system COMPONENT system EXCLUDE_FROM_ALL)
install(FILES deploy/debian/tokensampler.default
  DESTINATION /etc/default RENAME tokensampler COMPONENT system EXCLUDE_FROM_ALL)
