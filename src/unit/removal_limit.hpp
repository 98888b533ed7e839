// removal_limit.hpp (internal): publish's and sync's guard against removing
// too many mailboxes at once, and how their refusal names the first of
// them. Pure. Logs nothing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "unit/primary.hpp"

namespace unit::detail {

// options.max_removed of `total`, by default 5% of it or 500, whichever is
// larger.
std::int64_t removal_limit(const std::optional<RemovalLimit>& limit, std::int64_t total);
// "a@x, b@y, ..." for the first few of `removed` addresses.
std::string first_addresses(const std::vector<std::string>& first, std::int64_t removed);

}  // namespace unit::detail
