// diagnostics.hpp: unitpolicy's --query and --dump, for a person at a shell
// (or, with --json, for a machine). Both read the database directly (no
// daemon needed); --dump with a control socket adds the daemon's counters.
// They return the exit status: 0, or 1 when the database cannot answer or
// the control socket cannot be read. Output goes to `out` only.
#pragma once

#include <iosfwd>

#include "policyd/settings.hpp"

namespace unit::policyd {

int run_query(const Settings& settings, std::ostream& out);
int run_dump(const Settings& settings, std::ostream& out);

}  // namespace unit::policyd
