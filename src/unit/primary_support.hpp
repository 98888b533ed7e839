// primary_support.hpp (internal): the internal headers the Primary modules
// (primary*.cpp, sync.cpp) share, in one include: the connection and its
// statement helpers (primary_db.hpp), the value rules (primary_values.hpp),
// the alias graph (alias_graph.hpp) and target resolution
// (target_resolver.hpp), the removal limit (removal_limit.hpp), the meta
// table (primary_meta.hpp) and schema migrations (schema_migration.hpp).
// Each states its contract.
#pragma once

#include "unit/alias_graph.hpp"
#include "unit/primary_db.hpp"
#include "unit/primary_meta.hpp"
#include "unit/primary_values.hpp"
#include "unit/removal_limit.hpp"
#include "unit/schema_migration.hpp"
#include "unit/target_resolver.hpp"
