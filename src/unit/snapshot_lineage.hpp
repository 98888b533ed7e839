// snapshot_lineage.hpp (internal): whether a replacement may follow the
// snapshot served, by its meta.primary_id, meta.generation and
// meta.publish_override (the rules at the top of directory.hpp: no
// regression, no foreign primary, unless overridden). Pure. Logs nothing.
#pragma once

#include <optional>

#include "unit/directory.hpp"
#include "unit/snapshot_check.hpp"

namespace unit::detail {

// nullopt when `next` may replace `served`, otherwise the refusal
// (RefusalReason::Foreign or Regression).
std::optional<Failure> check_lineage(const ValidationCache::Served& served, const SnapshotInfo& next);

}  // namespace unit::detail
