# Finds oodkit's third-party dependencies. On a Debian machine they come from system
# packages (tools/setup.sh installs them). Where no packages are installed (the GPU machine),
# pass -DOODKIT_DEPS_SRC=<dir> holding unpacked sources: <dir>/eigen, <dir>/stb,
# <dir>/json (nlohmann), <dir>/cli11, <dir>/googletest.
set(OODKIT_DEPS_SRC "" CACHE PATH "Folder with dependency sources for machines without the Debian packages")

find_package(OpenMP REQUIRED COMPONENTS CXX)
find_package(ZLIB REQUIRED)

if(OODKIT_DEPS_SRC)
  add_library(Eigen3::Eigen INTERFACE IMPORTED)
  set_target_properties(Eigen3::Eigen PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${OODKIT_DEPS_SRC}/eigen")
  add_library(nlohmann_json::nlohmann_json INTERFACE IMPORTED)
  set_target_properties(nlohmann_json::nlohmann_json PROPERTIES
    INTERFACE_INCLUDE_DIRECTORIES "${OODKIT_DEPS_SRC}/json/single_include")
  add_library(CLI11::CLI11 INTERFACE IMPORTED)
  set_target_properties(CLI11::CLI11 PROPERTIES INTERFACE_INCLUDE_DIRECTORIES "${OODKIT_DEPS_SRC}/cli11/include")
  set(OODKIT_STB_INCLUDE_DIR "${OODKIT_DEPS_SRC}/stb")
  set(OODKIT_STB_LIBRARY "")   # stb_image's implementation is then compiled by data/
  if(OODKIT_BUILD_TESTS)
    set(INSTALL_GTEST OFF CACHE BOOL "" FORCE)
    set(BUILD_GMOCK OFF CACHE BOOL "" FORCE)
    add_subdirectory(${OODKIT_DEPS_SRC}/googletest ${CMAKE_BINARY_DIR}/googletest EXCLUDE_FROM_ALL)
    if(NOT TARGET GTest::gtest)  # googletest >= 1.11 defines it itself
      add_library(GTest::gtest ALIAS gtest)
    endif()
  endif()
else()
  find_package(Eigen3 3.3 REQUIRED NO_MODULE)
  find_package(nlohmann_json 3 REQUIRED)
  find_package(CLI11 REQUIRED)
  find_path(OODKIT_STB_INCLUDE_DIR stb_image.h PATH_SUFFIXES stb REQUIRED)
  find_library(OODKIT_STB_LIBRARY stb REQUIRED)
  if(OODKIT_BUILD_TESTS)
    find_package(GTest REQUIRED)
  endif()
endif()
