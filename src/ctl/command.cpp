#include "ctl/command.hpp"

namespace unit::ctl {

std::optional<std::string> Invocation::option(const char* name) const {
    if (options.count(name) == 0) return std::nullopt;
    return options[name].as<std::string>();
}

Primary open_primary(const Invocation& inv) { return unwrap(Primary::open(inv.settings.db)); }

}  // namespace unit::ctl
