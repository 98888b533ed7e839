#include "common/kept_settings.hpp"

#include <fmt/format.h>

namespace unit::common {

std::string KeptSettings::message() const {
    if (names_.empty()) return "reload: configuration reloaded";
    if (names_.size() == 1)
        return fmt::format("reload: configuration reloaded but for {}: it keeps its running value until a restart",
                           names_.front());
    return fmt::format("reload: configuration reloaded but for {}: they keep their running values until a restart",
                       fmt::join(names_, ", "));
}

}  // namespace unit::common
