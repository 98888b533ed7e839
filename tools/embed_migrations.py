#!/usr/bin/env python3
"""Embeds policy/migrations/NNNN_name.sql into a C++ source file (build step).

The number before the first underscore is the schema version the migration
leads to; the files are given in order by meson.build.
"""
import os
import sys


def main() -> int:
    out, inputs = sys.argv[1], sys.argv[2:]
    rows = []
    for path in inputs:
        name = os.path.basename(path)
        version = int(name.split('_', 1)[0])
        with open(path, encoding='utf-8') as f:
            sql = f.read()
        if ')SQL"' in sql:
            sys.exit(f'{path}: contains the raw string terminator')
        rows.append(f'    {{{version}, "{name}", R"SQL({sql})SQL"}},')
    with open(out, 'w', encoding='utf-8') as f:
        f.write('// Generated from policy/migrations by tools/embed_migrations.py.\n')
        f.write('#include "unit/schema.hpp"\n\nnamespace unit::detail {\n\n')
        f.write('const std::vector<Migration>& migrations() {\n')
        f.write('  static const std::vector<Migration> all = {\n')
        f.write('\n'.join(rows))
        f.write('\n  };\n  return all;\n}\n\n}  // namespace unit::detail\n')
    return 0


if __name__ == '__main__':
    sys.exit(main())
