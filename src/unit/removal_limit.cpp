#include "unit/removal_limit.hpp"

#include <algorithm>

namespace unit::detail {

std::int64_t removal_limit(const std::optional<RemovalLimit>& limit, std::int64_t total) {
    if (!limit) return std::max<std::int64_t>(500, total * 5 / 100);
    return limit->percent ? total * limit->value / 100 : limit->value;
}

std::string first_addresses(const std::vector<std::string>& first, std::int64_t removed) {
    std::string text;
    for (const auto& address : first) text += (text.empty() ? "" : ", ") + address;
    if (removed > static_cast<std::int64_t>(first.size())) text += ", ...";
    return text;
}

}  // namespace unit::detail
