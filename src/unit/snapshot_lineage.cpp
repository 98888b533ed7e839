#include "unit/snapshot_lineage.hpp"

#include <fmt/format.h>

#include <string>

namespace unit::detail {

std::optional<Failure> check_lineage(const ValidationCache::Served& served, const SnapshotInfo& next) {
    if (next.publish_override == "takeover") return std::nullopt;
    auto name = [](const std::string& id) { return id.empty() ? std::string("(none)") : id; };
    // A snapshot served without an identity (published before primaries had
    // one) is adopted by the first replacement that carries one: only the
    // generations are compared, so that upgrading needs no --takeover.
    if (!served.primary_id.empty() && next.primary_id != served.primary_id)
        return refusal(RefusalReason::Foreign,
                       fmt::format("generation {} of primary {} would replace generation {} of primary {}: another "
                                   "primary (publish it with --takeover if that is meant)",
                                   next.generation, name(next.primary_id), served.generation, name(served.primary_id)));
    if (next.generation < served.generation && next.publish_override != "rollback")
        return refusal(RefusalReason::Regression,
                       fmt::format("generation {} is lower than generation {} served (primary {}): a regression "
                                   "(publish it with --rollback if that is meant)",
                                   next.generation, served.generation, name(served.primary_id)));
    return std::nullopt;
}

}  // namespace unit::detail
