#!/bin/bash
# tests/format.sh: every C++ source under src/ and tests/ is laid out as
# .clang-format says; a file clang-format would change fails, with
# FILE:LINE of each change. Fix with:
#   find src tests \( -name '*.cpp' -o -name '*.hpp' \) -print0 | xargs -0 clang-format -i
# Run by the meson test `format`; CLANG_FORMAT names the program.
set -euo pipefail
cd "$(dirname "$0")/.."
find src tests \( -name '*.cpp' -o -name '*.hpp' \) -print0 |
    xargs -0 "${CLANG_FORMAT:-clang-format}" --style=file --dry-run -Werror
