// alias_graph.hpp (internal): the alias rows as a graph (alias -> targets),
// and what in it the resolver could not follow: cycles, chains deeper than
// max_alias_depth, and expansions visiting more than max_alias_targets
// rows (the resolver's work limit). A self-reference is not a cycle
// (virtual(5)). Writers refuse such a change; check() reports it.
//
// Outcomes: the problems, one line each (empty: none); a Conflict naming
// the first from refuse_alias_problems(); reading the rows fails as
// sqlite.hpp classes it. Thread safety: as the connection. Logs nothing.
#pragma once

#include <string>
#include <vector>

#include "unit/result.hpp"
#include "unit/sqlite.hpp"

namespace unit::detail {

inline constexpr int max_alias_depth = 8;  // as the resolver follows by default

Result<std::vector<std::string>> alias_problems(sqlite3* db, int max_alias_targets);
Result<void> refuse_alias_problems(sqlite3* db, int max_alias_targets);  // Conflict naming the first problem

}  // namespace unit::detail
