// Includes stb_image / stb_image_write from either layout: the Debian package (/usr/include/stb/,
// implementation in libstb) or a source checkout on the include path (OODKIT_DEPS_SRC builds).
#pragma once
#if __has_include(<stb_image.h>)
#include <stb_image.h>
#include <stb_image_write.h>
#else
#include <stb/stb_image.h>
#include <stb/stb_image_write.h>
#endif
