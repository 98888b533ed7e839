// resolver.hpp: what the directory says about one recipient address.
//
// resolve() normalises the address (address.hpp), then in one read
// transaction tries, for the exact address and then (with an extension) the
// address without it: an alias, then a mailbox; then the domain's catch-all
// alias "@domain". Alias targets are expanded recursively to mailboxes and
// external addresses (depth max_alias_depth, default 8); an alias that names
// itself among its targets means its own mailbox (as in Postfix virtual(5));
// any other cycle, or a deeper chain, is a Tempfail with the reason (a data
// error must not bounce mail). Expansion is linear in the alias rows it
// visits: an alias reached along several paths is expanded once, and
// duplicate targets are found by hashing. More than max_alias_targets rows
// for one address is a Tempfail with cause AliasLimit.
//
// Values that reach Postfix verbatim are checked (values.hpp): a unit's
// transport and nexthop when a mailbox on it is found (the transport must not
// be the daemon's hold_transport either), each alias target as it is read.
// A bad value is a Tempfail with cause BadData whose reason names the value
// (escaped); the value itself is never put into the Resolution.
//
// Outcomes (Resolution::outcome):
//   Mailbox      a mailbox that receives mail (active, moving or suspended;
//                the interfaces decide what moving and suspended mean)
//   Alias        an alias; targets holds the expansion
//   Unknown      a served domain without such an address
//   Unconfirmed  Unknown or Disabled, but in doubt (Resolution::doubt): the
//                replica is older than reject_max_age, or a replacement of
//                it is pending, or was refused for anything but a regression
//                or another primary (directory.hpp); answer 4xx, not 5xx
//   Foreign      the domain is not served here
//   Disabled     a disabled mailbox
//   Tempfail     the database cannot answer (missing, locked, corrupt,
//                unsupported schema, older than max_replica_age, bad alias
//                data, a bad value, past max_alias_targets, its lookups past
//                the Directory's lookup_timeout: cause LookupTimeout)
//   Malformed    the address itself is unusable (reason says why)
// Every Resolution carries the generation it was answered from (-1 when
// none) and, unless ResolverOptions::trace is off (the daemons' request
// path), a trace of the steps, for --query and `unitctl resolve`.
//
// The resolver is a function of (directory, options, address, time): it
// keeps nothing between calls, so a caller whose options change (a reload)
// just passes the new ones; the Directory keeps the connection and the
// snapshot. `now` (default: the current time) is what the replica's age is
// measured against; tests and replays give it.
//
// Never throws. Thread safety: as the Directory it is given (one per
// thread); the options are only read. Logs nothing.
#pragma once

#include <chrono>
#include <cstdint>
#include <ctime>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "unit/address.hpp"
#include "unit/directory.hpp"
#include "unit/export.hpp"
#include "unit/records.hpp"

namespace unit {

enum class Outcome { Mailbox, Alias, Unknown, Unconfirmed, Foreign, Disabled, Tempfail, Malformed };

UNIT_EXPORT std::string_view to_string(Outcome outcome) noexcept;

// Why an answer was a Tempfail, for counters and logs.
enum class TempfailCause { None, NoDatabase, Busy, Stale, BadData, AliasLimit, LookupTimeout };
inline constexpr std::size_t tempfail_cause_count = 7;  // counters are kept by cause
UNIT_EXPORT std::string_view to_string(TempfailCause cause) noexcept;

struct ResolverOptions {
    AddressOptions address;
    std::chrono::seconds reject_max_age{86400};  // 0: always trust "unknown"
    std::chrono::seconds max_replica_age{0};     // 0: never refuse for age
    int max_alias_depth = 8;
    // Alias rows visited while expanding one address, at most: past it the
    // answer is a Tempfail (AliasLimit), so that one RCPT TO cannot hold a
    // worker for seconds.
    int max_alias_targets = 1000;
    // The daemon's hold transport (answers.hpp): no unit may be routed
    // through it, or its mail would never leave the queue.
    std::string hold_transport = "unithold";
    bool trace = true;  // fill Resolution::trace (costs a formatted line per step)
};

// A mailbox and where it lives.
struct Destination {
    MailboxRecord mailbox;
    UnitRecord unit;
    std::optional<UnitRecord> moving_to;  // the target unit during a move
};

struct AliasTarget {
    enum class Kind { Mailbox, External, Disabled, Unknown };
    Kind kind;
    std::string address;
    std::optional<Destination> destination;  // Mailbox and Disabled
};

struct Resolution {
    Outcome outcome = Outcome::Tempfail;
    std::string input;                       // as given
    std::string address;                     // the key that matched, or the normalised input
    std::optional<Destination> destination;  // Mailbox, Disabled
    std::vector<AliasTarget> targets;        // Alias: the expansion, without duplicates
    std::int64_t generation = -1;
    std::string reason;                         // Tempfail, Malformed, Unconfirmed: why
    TempfailCause cause = TempfailCause::None;  // Tempfail: the class of reason
    // Non-empty when a negative answer from this snapshot is not certain
    // (it is older than reject_max_age, or a replacement of it is being
    // validated, or was refused as unreadable, corrupt ...): says why. The
    // interfaces then answer every negative (unknown, disabled, an alias
    // without a deliverable target) with the unconfirmed 4xx / TEMP, never
    // a 5xx or NOTFOUND. Set for negative outcomes only (it costs a stat()).
    std::string doubt;
    std::vector<std::string> trace;
};

// Whether a domain is served here (the socketmap `domain` table).
enum class DomainOutcome { Served, NotServed, Tempfail, Malformed };

struct DomainResolution {
    DomainOutcome outcome = DomainOutcome::Tempfail;
    std::string domain;  // normalised
    std::int64_t generation = -1;
    std::string reason;  // Tempfail, Malformed: why
    TempfailCause cause = TempfailCause::None;
};

// What the directory says about `address` (the outcomes above).
UNIT_EXPORT Resolution resolve(Directory& directory, const ResolverOptions& options, std::string_view address,
                               std::time_t now = std::time(nullptr)) noexcept;

// Whether `domain` is served here, from the same snapshot rules as resolve()
// (max_replica_age applies; reject_max_age does not: there is no negative
// answer to doubt).
UNIT_EXPORT DomainResolution resolve_domain(Directory& directory, const ResolverOptions& options,
                                            std::string_view domain, std::time_t now = std::time(nullptr)) noexcept;

}  // namespace unit
