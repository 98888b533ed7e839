#!/usr/bin/env python3
"""Writes examples/sample/sample.csv, the sample directory of unitpolicy.

The file is in the import format of `unitctl import` (DESIGN section 11):
a header "kind,address,value,state", then domains, units, mailboxes and
aliases, in that order. The output is deterministic: the pseudo-random
choices come from a generator with a fixed seed, and only its random()
method is used (the one Python promises to keep stable across versions).

Usage: make_sample.py [OUTPUT]    (default: sample.csv beside this script;
                                   "-" writes to stdout)
"""
import csv
import random
import sys
from pathlib import Path

SEED = 20260101
MAILBOX_COUNT = 1000

IDN_DOMAIN = 'xn--bcher-kva.example'  # bücher.example, stored as an A-label
DOMAINS = ['example.com', 'example.net', IDN_DOMAIN]

# name, route (transport:nexthop), state
UNITS = [
    ('unit1', 'smtp:[unit1.example.com]', 'active'),
    ('unit2', 'smtp:[unit2.example.com]', 'active'),
    ('unit3', 'smtp:[unit3.example.com]', 'active'),
    ('unit4', 'lmtp:[10.0.0.14]:24', 'down'),
]

# The addresses the README quick start resolves: address, unit, state.
WELL_KNOWN = [
    ('alice@example.com', 'unit1', 'active'),
    ('bob@example.com', 'unit2', 'active'),
    ('carol@example.com', 'unit1', 'moving:unit2'),
    ('dave@example.net', 'unit4', 'active'),
    ('erin@example.com', 'unit3', 'suspended'),
    ('frank@example.com', 'unit1', 'disabled'),
    ('grace@example.net', 'unit3', 'active'),          # the @example.net catch-all
    ('user@' + IDN_DOMAIN, 'unit2', 'active'),         # user@bücher.example
]

FIRST_NAMES = '''
    aaron abigail adam adrian aisha alan albert alex alexandra amelia ana andrea
    andrew angela anna anthony arthur barbara ben benjamin beth brian camille
    carlos catherine charles charlotte chloe chris christine claire daniel david
    deborah diana dominic edward elena elizabeth emily emma eric eva felix fiona
    francis gabriel george hannah harry helen henry ian isabel jack james jane
    jason jennifer jessica john jonathan joseph julia karen kate kevin laura leo
    lisa lucas lucy maria mark martin mary matthew michael nadia natalie nicholas
    nina oliver olivia oscar patrick paul peter rachel rebecca richard robert
    rosa ruth samuel sarah simon sofia sophie stephen susan thomas victoria
    william yusuf zoe
'''.split()

LAST_NAMES = '''
    adams alvarez anderson bailey baker becker bennett brown campbell carter
    clark collins cook cooper davies diaz dubois edwards evans fischer fisher
    foster garcia green hall harris hoffmann hughes jackson james johnson jones
    kelly king klein lambert lee lewis lopez martin martinez meyer miller mitchell
    moore morgan morris muller murphy nguyen novak oconnor parker perez peters
    phillips price reed richter roberts robinson rossi russo sanchez schmidt
    schneider scott silva smith stewart taylor thomas thompson turner walker
    ward watson weber white williams wilson wood wright young zimmermann
'''.split()

# Share of the generated mailboxes per domain and per unit (cumulative
# thresholds are derived below; the shares need not add up exactly to 1).
DOMAIN_SHARES = [('example.com', 0.70), ('example.net', 0.20), (IDN_DOMAIN, 0.10)]
UNIT_SHARES = [('unit1', 0.30), ('unit2', 0.30), ('unit3', 0.25), ('unit4', 0.15)]
SUSPENDED_SHARE = 0.01
DISABLED_SHARE = 0.02


def pick(rng: random.Random, shares):
    """Chooses a name by share, using rng.random() only."""
    x = rng.random() * sum(share for _, share in shares)
    for name, share in shares:
        if x < share:
            return name
        x -= share
    return shares[-1][0]


def index(rng: random.Random, n: int) -> int:
    return min(int(rng.random() * n), n - 1)


def mailboxes():
    rng = random.Random(SEED)
    rows = {address: (unit, state) for address, unit, state in WELL_KNOWN}
    locals_taken = {address.split('@')[0] for address in rows}
    while len(rows) < MAILBOX_COUNT:
        first = FIRST_NAMES[index(rng, len(FIRST_NAMES))]
        last = LAST_NAMES[index(rng, len(LAST_NAMES))]
        domain = pick(rng, DOMAIN_SHARES)
        unit = pick(rng, UNIT_SHARES)
        x = rng.random()
        state = ('disabled' if x < DISABLED_SHARE
                 else 'suspended' if x < DISABLED_SHARE + SUSPENDED_SHARE
                 else 'active')
        local = f'{first}.{last}'
        address = f'{local}@{domain}'
        if address in rows or local in locals_taken:
            continue
        rows[address] = (unit, state)
    return sorted((address, unit, state) for address, (unit, state) in rows.items())


def aliases():
    rows = []
    for domain in DOMAINS:
        rows.append((f'postmaster@{domain}', 'alice@example.com'))
        rows.append((f'abuse@{domain}', f'postmaster@{domain}'))  # an alias of an alias
    rows += [
        ('sales@example.com', 'alice@example.com'),   # unit1
        ('sales@example.com', 'bob@example.com'),     # unit2
        ('press@example.com', 'newsroom@example.org'),  # external
        ('@example.net', 'grace@example.net'),        # catch-all
    ]
    return sorted(rows)


def main() -> int:
    if len(sys.argv) > 2:
        print('usage: make_sample.py [OUTPUT]', file=sys.stderr)
        return 2
    target = sys.argv[1] if len(sys.argv) == 2 else str(Path(__file__).with_name('sample.csv'))
    out = sys.stdout if target == '-' else open(target, 'w', encoding='utf-8', newline='')
    try:
        writer = csv.writer(out, lineterminator='\n')
        writer.writerow(['kind', 'address', 'value', 'state'])
        for domain in DOMAINS:
            writer.writerow(['domain', domain, '', ''])
        for name, route, state in UNITS:
            writer.writerow(['unit', name, route, state])
        boxes = mailboxes()
        assert len(boxes) == MAILBOX_COUNT
        assert sum(1 for _, _, state in boxes if state.startswith('moving:')) == 1
        for address, unit, state in boxes:
            writer.writerow(['mailbox', address, unit, state])
        for address, target_address in aliases():
            writer.writerow(['alias', address, target_address, ''])
    finally:
        if out is not sys.stdout:
            out.close()
    return 0


if __name__ == '__main__':
    sys.exit(main())
