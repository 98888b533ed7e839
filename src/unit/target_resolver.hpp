// target_resolver.hpp (internal): whether an alias target resolves, as the
// resolver would find it: a mailbox, an alias (not for the alias's own
// address: that means its mailbox), user@'s mailbox for user+tag@ with the
// recipient delimiter, or the catch-all of its domain. A target outside
// the served domains always does. Writers refuse a dangling target;
// check() reports it.
//
// Outcomes: true / false, or a lookup's error as sqlite.hpp classes it.
// Thread safety: as the connection. Logs nothing.
#pragma once

#include <string>

#include "unit/result.hpp"
#include "unit/sqlite.hpp"

namespace unit::detail {

class TargetResolver {
public:
    TargetResolver(sqlite3* db, std::string recipient_delimiter)
        : db_(db), delimiter_(std::move(recipient_delimiter)) {}
    Result<bool> resolves(const std::string& alias, const std::string& target);

private:
    sqlite3* db_;
    std::string delimiter_;
};

// The message for a target that does not resolve.
std::string dangling_target(const std::string& alias, const std::string& target);

}  // namespace unit::detail
