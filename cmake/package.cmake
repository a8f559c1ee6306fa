# The Debian package "tokensampler" (cpack -G DEB in the build directory): the server
# and CLI binaries in /usr/bin, the systemd unit and /etc/default/tokensampler. Headers
# and libraries (install component dev) stay out of it. See docs/DEPLOY.md.
set(CPACK_PACKAGE_NAME tokensampler)
set(CPACK_PACKAGE_VENDOR tokensampler)
set(CPACK_PACKAGE_CONTACT "tokensampler maintainers <tokensampler@localhost>")
set(CPACK_PACKAGE_DESCRIPTION_SUMMARY "gRPC token sampler service for LLM serving")
set(CPACK_PACKAGE_DESCRIPTION
  "tokensampler-server samples tokens from vocabulary logits over gRPC (temperature,
top-k, top-p, min-p, typical-p, penalties, masks, seeded reproducible draws); tokensampler
is its command-line client.")
set(CPACK_PACKAGE_VERSION ${PROJECT_VERSION})
set(CPACK_PACKAGING_INSTALL_PREFIX /usr)
set(CPACK_STRIP_FILES ON)
# Only the components a machine running the service needs: (build dir, project,
# component, subdirectory) per entry.
set(CPACK_INSTALL_CMAKE_PROJECTS
  "${PROJECT_BINARY_DIR};tokensampler;server;/"
  "${PROJECT_BINARY_DIR};tokensampler;system;/")

set(CPACK_DEBIAN_FILE_NAME DEB-DEFAULT)
set(CPACK_DEBIAN_PACKAGE_SECTION net)
set(CPACK_DEBIAN_PACKAGE_PRIORITY optional)
# Depends from the binaries' shared libraries (dpkg-shlibdeps): libgrpc++1.51,
# libprotobuf32, libabsl20220623, libhwy1, libc6, ... as the container image lists them.
set(CPACK_DEBIAN_PACKAGE_SHLIBDEPS ON)
set(CPACK_DEBIAN_PACKAGE_CONTROL_EXTRA
  ${PROJECT_SOURCE_DIR}/deploy/debian/conffiles
  ${PROJECT_SOURCE_DIR}/deploy/debian/postinst
  ${PROJECT_SOURCE_DIR}/deploy/debian/prerm
  ${PROJECT_SOURCE_DIR}/deploy/debian/postrm)
set(CPACK_DEBIAN_PACKAGE_CONTROL_STRICT_PERMISSION ON)
set(CPACK_GENERATOR DEB)
include(CPack)
