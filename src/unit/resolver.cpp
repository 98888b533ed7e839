#include "unit/resolver.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <ctime>
#include <unordered_map>
#include <unordered_set>

#include "unit/values.hpp"

namespace unit {

std::string_view to_string(Outcome outcome) noexcept {
    switch (outcome) {
    case Outcome::Mailbox: return "mailbox";
    case Outcome::Alias: return "alias";
    case Outcome::Unknown: return "unknown";
    case Outcome::Unconfirmed: return "unconfirmed";
    case Outcome::Foreign: return "foreign";
    case Outcome::Disabled: return "disabled";
    case Outcome::Tempfail: return "tempfail";
    case Outcome::Malformed: return "malformed";
    }
    return "?";
}

std::string_view to_string(TempfailCause cause) noexcept {
    switch (cause) {
    case TempfailCause::None: return "none";
    case TempfailCause::NoDatabase: return "no_database";
    case TempfailCause::Busy: return "busy";
    case TempfailCause::Stale: return "stale";
    case TempfailCause::BadData: return "bad_data";
    case TempfailCause::AliasLimit: return "alias_limit";
    case TempfailCause::LookupTimeout: return "lookup_timeout";
    }
    return "?";
}

namespace {

TempfailCause cause_of(const Error& e, const Directory& directory) noexcept {
    switch (e.code) {
    case Errc::Stale: return TempfailCause::Stale;
    case Errc::Timeout: return TempfailCause::LookupTimeout;
    case Errc::Unavailable:
    case Errc::Io: return directory.status().serving ? TempfailCause::Busy : TempfailCause::NoDatabase;
    case Errc::Corrupt:
    case Errc::Invalid:
    case Errc::NotFound:
    case Errc::Conflict: return TempfailCause::BadData;
    }
    return TempfailCause::Busy;
}

std::string_view domain_of(std::string_view address) noexcept {
    auto at = address.rfind('@');
    return at == std::string_view::npos ? std::string_view{} : address.substr(at + 1);
}

std::string describe(const Destination& d) {
    std::string text = fmt::format("mailbox {} on unit {} ({}, unit {}), mailbox {}", d.mailbox.address, d.unit.name,
                                   d.unit.route(), to_string(d.unit.state), to_string(d.mailbox.state));
    if (d.moving_to) text += fmt::format(", moving to {} ({})", d.moving_to->name, d.moving_to->route());
    return text;
}

// A unit's route reaches Postfix verbatim ("transport:nexthop"): both parts
// must be well-formed, and the transport must not be the hold transport.
Result<void> check_route(const UnitRecord& unit, const ResolverOptions& options) {
    auto checked = check_transport(unit.transport, options.hold_transport);
    if (checked) checked = check_nexthop(unit.nexthop);
    if (checked) return {};
    return make_error(Errc::Invalid, fmt::format("unit {}: {}", unit.name, checked.error().message));
}

// One resolution in progress: the open read transaction, the options and
// the Resolution being filled in. Each alias is expanded once and each
// target added once (hash sets), so the work is linear in the alias rows
// visited, which max_alias_targets bounds; units and domains are read once.
class Lookup {
public:
    Lookup(Reader& reader, const ResolverOptions& options, Resolution& result)
        : reader_(reader), options_(options), result_(result) {}

    // Finds a mailbox or an alias at `key`: true when found (result_ filled).
    Result<bool> try_key(const std::string& key);
    // Finds the domain's catch-all alias "@domain" (never a mailbox: a
    // mailbox address has a local part, so none is looked up).
    Result<bool> try_catch_all(const std::string& domain);
    // The cause of a failure that its error code does not tell (the alias
    // work limit); None otherwise.
    TempfailCause cause() const noexcept { return cause_; }

private:
    Result<std::optional<Destination>> destination(const std::string& address);
    // Expands `key` when it is an alias: true when it is (result_ filled).
    Result<bool> try_alias(const std::string& key);
    Result<std::optional<UnitRecord>> unit(const std::string& name);
    Result<bool> served(std::string_view domain);
    Result<void> expand(const std::string& alias, const std::vector<std::string>& targets);
    Result<void> add_target(const std::string& address);
    template <class... Args>
    void note(fmt::format_string<Args...> format, Args&&... args) {
        if (options_.trace) result_.trace.push_back(fmt::format(format, std::forward<Args>(args)...));
    }

    Reader& reader_;
    const ResolverOptions& options_;
    Resolution& result_;
    std::vector<std::string> path_;                                     // aliases being expanded, outermost first
    std::unordered_set<std::string> expanded_;                          // aliases whose targets are already in result_
    std::unordered_set<std::string> added_;                             // addresses already in result_.targets
    std::unordered_map<std::string, std::optional<UnitRecord>> units_;  // checked routes
    std::unordered_map<std::string, bool> domains_;
    std::size_t rows_ = 0;  // alias rows visited
    TempfailCause cause_ = TempfailCause::None;
};

Result<std::optional<UnitRecord>> Lookup::unit(const std::string& name) {
    if (auto it = units_.find(name); it != units_.end()) return it->second;
    auto found = reader_.unit(name);
    if (!found) return found.error();
    if (found.value())
        if (auto r = check_route(*found.value(), options_); !r) return r.error();
    units_.emplace(name, found.value());
    return std::move(found.value());
}

Result<bool> Lookup::served(std::string_view domain) {
    std::string key(domain);
    if (auto it = domains_.find(key); it != domains_.end()) return it->second;
    auto found = reader_.domain_served(domain);
    if (!found) return found.error();
    domains_.emplace(std::move(key), found.value());
    return found.value();
}

Result<std::optional<Destination>> Lookup::destination(const std::string& address) {
    auto mailbox = reader_.mailbox(address);
    if (!mailbox) return mailbox.error();
    if (!mailbox.value()) return std::optional<Destination>();
    Destination d;
    d.mailbox = std::move(*mailbox.value());
    auto home = unit(d.mailbox.unit);
    if (!home) return home.error();
    if (!home.value())
        return make_error(Errc::Corrupt, fmt::format("mailbox {} is on unknown unit {}", address, d.mailbox.unit));
    d.unit = std::move(*home.value());
    if (d.mailbox.state == MailboxState::Moving) {
        auto to = unit(d.mailbox.moving_to);
        if (!to) return to.error();
        if (!to.value())
            return make_error(Errc::Corrupt,
                              fmt::format("mailbox {} is moving to unknown unit {}", address, d.mailbox.moving_to));
        d.moving_to = std::move(to.value());
    }
    return std::optional<Destination>(std::move(d));
}

Result<bool> Lookup::try_alias(const std::string& key) {
    auto targets = reader_.alias_targets(key);
    if (!targets) return targets.error();
    if (targets->empty()) return false;
    note("{}: alias of {} target(s)", key, targets->size());
    if (auto r = expand(key, *targets); !r) return r.error();
    result_.outcome = Outcome::Alias;
    result_.address = key;
    return true;
}

Result<bool> Lookup::try_key(const std::string& key) {
    auto alias = try_alias(key);
    if (!alias || alias.value()) return alias;
    auto found = destination(key);
    if (!found) return found.error();
    if (!found.value()) {
        note("{}: no alias, no mailbox", key);
        return false;
    }
    if (options_.trace) note("{}: {}", key, describe(*found.value()));
    result_.outcome = found.value()->mailbox.state == MailboxState::Disabled ? Outcome::Disabled : Outcome::Mailbox;
    result_.address = key;
    result_.destination = std::move(found.value());
    return true;
}

Result<bool> Lookup::try_catch_all(const std::string& domain) {
    const std::string key = "@" + domain;
    auto found = try_alias(key);
    if (found && !found.value()) note("{}: no catch-all alias", key);
    return found;
}

Result<void> Lookup::expand(const std::string& alias, const std::vector<std::string>& targets) {
    if (static_cast<int>(path_.size()) >= options_.max_alias_depth)
        return make_error(Errc::Corrupt,
                          fmt::format("alias chain deeper than {} at {}", options_.max_alias_depth, alias));
    rows_ += targets.size();
    if (rows_ > static_cast<std::size_t>(std::max(options_.max_alias_targets, 0))) {
        cause_ = TempfailCause::AliasLimit;
        return make_error(Errc::Invalid, fmt::format("alias expansion visits more than max_alias_targets {} rows at {}",
                                                     options_.max_alias_targets, alias));
    }
    expanded_.insert(alias);
    path_.push_back(alias);
    for (const auto& target : targets) {
        // A target becomes one recipient of the alias map's answer.
        if (auto r = check_alias_target(target); !r)
            return make_error(Errc::Invalid, fmt::format("alias {}: {}", alias, r.error().message));
        // An alias that lists itself keeps a copy in its own mailbox (virtual(5)).
        if (target == alias) {
            if (auto r = add_target(target); !r) return r;
            continue;
        }
        if (std::find(path_.begin(), path_.end(), target) != path_.end()) {  // at most max_alias_depth long
            std::string chain;
            for (const auto& step : path_) chain += step + " -> ";
            return make_error(Errc::Corrupt, fmt::format("alias cycle: {}{}", chain, target));
        }
        // Reached along another path: the alias's targets, or the target, are in.
        if (expanded_.count(target) != 0 || added_.count(target) != 0) continue;
        auto nested = reader_.alias_targets(target);
        if (!nested) return nested.error();
        if (nested->empty()) {
            if (auto r = add_target(target); !r) return r;
        } else if (auto r = expand(target, *nested); !r) {
            return r;
        }
    }
    path_.pop_back();
    return {};
}

Result<void> Lookup::add_target(const std::string& address) {
    if (!added_.insert(address).second) return {};
    AliasTarget target{AliasTarget::Kind::External, address, std::nullopt};
    auto is_served = served(domain_of(address));
    if (!is_served) return is_served.error();
    if (is_served.value()) {
        auto found = destination(address);
        if (!found) return found.error();
        // A target with an extension lands in the mailbox without it, as in Postfix.
        if (!found.value()) {
            if (auto parsed = normalize_address(address, options_.address); parsed && parsed->has_extension()) {
                found = destination(parsed->base());
                if (!found) return found.error();
            }
        }
        if (!found.value()) {
            // Postfix looks the target up in virtual_alias_maps again, where
            // the domain's catch-all answers for it: its targets are the
            // alias's (unless the catch-all is the alias being expanded).
            std::string catch_all = "@" + std::string(domain_of(address));
            if (std::find(path_.begin(), path_.end(), catch_all) == path_.end()) {
                if (expanded_.count(catch_all) != 0) return {};  // its targets are in already
                auto caught = reader_.alias_targets(catch_all);
                if (!caught) return caught.error();
                if (!caught->empty()) {
                    note("  target {}: no mailbox, taken by the catch-all {}", address, catch_all);
                    return expand(catch_all, *caught);
                }
            }
            target.kind = AliasTarget::Kind::Unknown;
        } else {
            bool disabled = found.value()->mailbox.state == MailboxState::Disabled;
            target.kind = disabled ? AliasTarget::Kind::Disabled : AliasTarget::Kind::Mailbox;
            target.destination = std::move(found.value());
        }
    }
    if (options_.trace)
        note("  target {}: {}", address,
             target.destination                          ? describe(*target.destination)
             : target.kind == AliasTarget::Kind::Unknown ? "no such mailbox"
                                                         : "external");
    result_.targets.push_back(std::move(target));
    return {};
}

void fail(Resolution& r, bool trace, Outcome outcome, std::string reason) {
    r.outcome = outcome;
    if (trace) r.trace.push_back(fmt::format("{}: {}", to_string(outcome), reason));
    r.reason = std::move(reason);
}

std::string format_time(std::time_t t) {
    std::tm tm{};
    gmtime_r(&t, &tm);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buffer;
}

// An open read transaction on a snapshot young enough to answer from.
struct Snapshot {
    Reader reader;
    std::int64_t generation;
    std::int64_t age;
};

// "N s old", or why the age is unknown (directory.hpp: unknown_age).
std::string age_text(std::int64_t age) {
    if (age == unknown_age) return "of unknown age (published_at in the future)";
    return fmt::format("{} s old", age);
}

Result<Snapshot> open_snapshot(Directory& directory, const ResolverOptions& options, std::time_t now) {
    auto reader = directory.read();
    if (!reader) return reader.error();
    auto generation = reader->generation();
    auto age = directory.age_seconds(now).value_or(0);
    if (options.max_replica_age.count() > 0 && age > options.max_replica_age.count())
        return make_error(Errc::Stale, fmt::format("replica is {}, over max_replica_age {} s", age_text(age),
                                                   options.max_replica_age.count()));
    return Snapshot{std::move(reader.value()), generation, age};
}

std::string describe(const Snapshot& snapshot, const Directory& directory) {
    const auto& info = directory.status().snapshot;
    return fmt::format("snapshot generation {}, {}, {}", snapshot.generation,
                       info.published_at ? "published " + format_time(*info.published_at)
                                         : std::string("never published"),
                       age_text(snapshot.age));
}

// The address in the directory: a foreign domain, the address, its base
// without the extension, the domain's catch-all. True when found (or
// foreign); result filled.
Result<bool> find(Lookup& lookup, Reader& reader, const Address& a, Resolution& r, bool trace) {
    auto served = reader.domain_served(a.domain);
    if (!served) return served.error();
    if (!served.value()) {
        if (trace) r.trace.push_back(fmt::format("domain {} is not served here", a.domain));
        r.outcome = Outcome::Foreign;
        return true;
    }
    if (trace) r.trace.push_back(fmt::format("domain {} is served", a.domain));
    auto found = lookup.try_key(a.full());
    if (found && !found.value() && a.has_extension()) found = lookup.try_key(a.base());
    if (found && !found.value()) found = lookup.try_catch_all(a.domain);
    return found;
}

// Why a negative answer is not final ("" when it is): it is final only from
// a snapshot that is young enough and not being replaced, since the newer
// file may hold the address. The path is stat()ed for negatives only, never
// on the hot path. An alias with a target it cannot deliver to is partly
// negative: a copy for that target would be left out (unitmilter's
// expansion).
std::string doubt_of_negative(const Resolution& r, std::int64_t age, const ResolverOptions& options,
                              Directory& directory) {
    const bool undeliverable_target = r.outcome == Outcome::Alias &&
                                      std::any_of(r.targets.begin(), r.targets.end(), [](const AliasTarget& t) {
                                          return t.kind == AliasTarget::Kind::Unknown ||
                                                 t.kind == AliasTarget::Kind::Disabled;
                                      });
    const bool negative = r.outcome == Outcome::Unknown || r.outcome == Outcome::Disabled || undeliverable_target;
    if (!negative) return "";
    if (options.reject_max_age.count() > 0 && age > options.reject_max_age.count())
        return fmt::format("replica is {}, over reject_max_age {} s", age_text(age), options.reject_max_age.count());
    if (directory.replacement_pending())
        return fmt::format("a replacement of generation {} is being validated", r.generation);
    // A newer file that cannot be read may hold the address: a fault at the
    // path must not turn into a 5xx.
    if (const auto& refused = directory.status().refused;
        refused && refused->reason != RefusalReason::Regression && refused->reason != RefusalReason::Foreign)
        return fmt::format("the replacement of generation {} was refused ({})", r.generation,
                           to_string(refused->reason));
    return "";
}

}  // namespace

DomainResolution resolve_domain(Directory& directory, const ResolverOptions& options, std::string_view domain,
                                std::time_t now) noexcept {
    DomainResolution d;
    try {
        auto normal = normalize_domain(domain);
        if (!normal) {
            d.outcome = DomainOutcome::Malformed;
            d.reason = normal.error().message;
            return d;
        }
        d.domain = std::move(normal.value());
        auto snapshot = open_snapshot(directory, options, now);
        if (!snapshot) {
            d.reason = snapshot.error().message;
            d.cause = cause_of(snapshot.error(), directory);
            return d;
        }
        d.generation = snapshot->generation;
        auto served = snapshot->reader.domain_served(d.domain);
        if (!served) {
            d.reason = served.error().message;
            d.cause = cause_of(served.error(), directory);
            return d;
        }
        d.outcome = served.value() ? DomainOutcome::Served : DomainOutcome::NotServed;
    } catch (const std::exception& e) {  // allocation failure
        d.outcome = DomainOutcome::Tempfail;
        d.reason = e.what();
        d.cause = TempfailCause::Busy;
    }
    return d;
}

Resolution resolve(Directory& directory, const ResolverOptions& options, std::string_view address,
                   std::time_t now) noexcept {
    Resolution r;
    try {
        const bool trace = options.trace;
        r.input = std::string(address);
        if (trace) r.trace.push_back(fmt::format("input \"{}\"", address));
        auto parsed = normalize_address(address, options.address);
        if (!parsed) {
            fail(r, trace, Outcome::Malformed, parsed.error().message);
            return r;
        }
        const Address& a = parsed.value();
        r.address = a.full();
        if (trace)
            r.trace.push_back(fmt::format("normalised to {}{}{}", r.address, a.notes.empty() ? "" : ": ",
                                          fmt::join(a.notes, "; ")));

        auto snapshot = open_snapshot(directory, options, now);
        if (!snapshot) {
            fail(r, trace, Outcome::Tempfail, snapshot.error().message);
            r.cause = cause_of(snapshot.error(), directory);
            return r;
        }
        auto& reader = snapshot->reader;
        auto age = snapshot->age;
        r.generation = snapshot->generation;
        if (trace) r.trace.push_back(describe(*snapshot, directory));

        Lookup lookup(reader, options, r);
        auto found = find(lookup, reader, a, r, trace);
        if (!found) {
            r.targets.clear();
            r.destination.reset();
            fail(r, trace, Outcome::Tempfail, found.error().message);
            r.cause = lookup.cause() != TempfailCause::None ? lookup.cause() : cause_of(found.error(), directory);
            return r;
        }
        if (!found.value()) r.outcome = Outcome::Unknown;
        r.doubt = doubt_of_negative(r, age, options, directory);
        if (!r.doubt.empty() && (r.outcome == Outcome::Unknown || r.outcome == Outcome::Disabled)) {
            fail(r, trace, Outcome::Unconfirmed, fmt::format("{} in doubt: {}", to_string(r.outcome), r.doubt));
            return r;
        }
        if (r.outcome == Outcome::Unknown && trace) r.trace.push_back("unknown: no such address");
        return r;
    } catch (const std::exception& e) {  // allocation failure
        Resolution broken;
        broken.input = std::string(address);
        fail(broken, options.trace, Outcome::Tempfail, e.what());
        broken.cause = TempfailCause::Busy;
        return broken;
    }
}

}  // namespace unit
