#!/usr/bin/env python3
"""Writes a page or an example as this build installs it (build step).

The man pages and examples name the installed files at Meson's default
layout (/usr/local/sbin/unitpolicy, /usr/local/share/doc/unitpolicy/...), so
that they read right in the source tree and in a default build. The
installed copy names them where this build puts them: each
/usr/local/DIR is replaced by the build's directory for DIR.

usage: install_paths.py --sbindir=ABS --bindir=ABS --datadir=ABS --mandir=ABS INPUT OUTPUT

Any other /usr/local path in INPUT is an error naming file:line, whatever the
prefix: a new one must be given its directory here, or the default build
would be the only one to say it right. OUTPUT keeps INPUT's mode (the
example scripts stay executable).
"""
import argparse
import re
import shutil
import sys

# Meson's default directory under /usr/local -> the option that moves it.
# share/man before share: a build may put the man pages elsewhere.
DEFAULTS = {'share/man': 'mandir', 'share': 'datadir', 'sbin': 'sbindir', 'bin': 'bindir'}
# A directory ends at "/" or at a character that cannot be part of a name.
PATTERN = re.compile(rb'/usr/local/(' + b'|'.join(d.encode() for d in DEFAULTS) + rb')(?![\w.-])')


def main() -> int:
    parser = argparse.ArgumentParser()
    for option in DEFAULTS.values():
        parser.add_argument('--' + option, required=True)
    parser.add_argument('input')
    parser.add_argument('output')
    args = parser.parse_args()
    dirs = {default: getattr(args, option).encode() for default, option in DEFAULTS.items()}
    for default, path in dirs.items():
        if not path.startswith(b'/'):
            sys.exit(f'install_paths.py: --{DEFAULTS[default]} {path.decode()}: not an absolute path')

    with open(args.input, 'rb') as f:
        lines = f.read().split(b'\n')
    out = []
    for number, line in enumerate(lines, 1):
        # What the table does not map is left after removing what it does.
        left = re.search(rb'/usr/local\b\S*', PATTERN.sub(b'', line))
        if left:
            sys.exit(f'{args.input}:{number}: {left.group(0).decode(errors="replace")}: '
                     'a /usr/local directory that tools/install_paths.py does not map')
        out.append(PATTERN.sub(lambda m: dirs[m.group(1).decode()], line))
    with open(args.output, 'wb') as f:
        f.write(b'\n'.join(out))
    shutil.copymode(args.input, args.output)
    return 0


if __name__ == '__main__':
    sys.exit(main())
