#include "unit/target_resolver.hpp"

#include <fmt/format.h>

#include "unit/address.hpp"
#include "unit/primary_db.hpp"
#include "unit/primary_values.hpp"
#include "unit/statements.hpp"

namespace unit::detail {

Result<bool> TargetResolver::resolves(const std::string& alias, const std::string& target) {
    auto domain = std::string(domain_of(target));
    auto served = domain_served(db_, domain);
    if (!served) return served.error();
    if (!served.value()) return true;  // an external address
    auto found = [&](const std::string& key) -> Result<bool> {
        auto mailbox = exists(db_, sql::mailboxes::exists, {key});
        if (!mailbox || mailbox.value() || key == alias) return mailbox;
        return exists(db_, sql::aliases::exists, {key});
    };
    auto exact = found(target);
    if (!exact || exact.value()) return exact;
    if (!delimiter_.empty()) {
        // As the resolver: an extended target lands in the base's mailbox.
        auto parsed = normalize_address(target, AddressOptions{true, delimiter_});
        if (parsed && parsed->has_extension()) {
            auto base = exists(db_, sql::mailboxes::exists, {parsed->base()});
            if (!base || base.value()) return base;
        }
    }
    return exists(db_, sql::aliases::exists, {"@" + domain});
}

std::string dangling_target(const std::string& alias, const std::string& target) {
    return fmt::format("alias {} -> {}: {} does not resolve (no mailbox, alias or catch-all in its served domain)",
                       alias, target, target);
}

}  // namespace unit::detail
