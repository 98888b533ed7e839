// export.hpp: UNIT_EXPORT marks libunit's public API; everything else in the
// library is built with hidden visibility.
#pragma once

#define UNIT_EXPORT __attribute__((visibility("default")))
