// schema.hpp (internal): the numbered migrations of policy/migrations,
// embedded at build time. Each one leads to schema version `version` and
// sets meta.schema_version itself.
#pragma once

#include <string_view>
#include <vector>

#include "unit/sql_text.hpp"

namespace unit::detail {

struct Migration {
    int version;
    std::string_view name;
    SqlText sql;  // a literal, embedded at build time
};

// In ascending version order.
const std::vector<Migration>& migrations();

}  // namespace unit::detail
