// stb_image's implementation for builds without the system libstb (OODKIT_DEPS_SRC): the
// build defines OODKIT_STB_IMPLEMENTATION=1 for oodkit_data when OODKIT_STB_LIBRARY is empty.
// With the Debian package libstb provides these symbols and this file compiles to nothing.
#if defined(OODKIT_STB_IMPLEMENTATION) && OODKIT_STB_IMPLEMENTATION
#define STB_IMAGE_IMPLEMENTATION
#define STB_IMAGE_WRITE_IMPLEMENTATION
#include "data/stb.h"
#endif
