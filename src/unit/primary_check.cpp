// Primary::check and check_report (primary.hpp): the whole database against
// the schema's and the value rules, the alias graph and the deliverability
// of every alias.
#include <fmt/format.h>

#include <functional>
#include <map>
#include <unordered_set>

#include "unit/alias_graph.hpp"
#include "unit/primary.hpp"
#include "unit/primary_db.hpp"
#include "unit/primary_values.hpp"
#include "unit/statements.hpp"
#include "unit/target_resolver.hpp"
#include "unit/values.hpp"

namespace unit {

using namespace detail;  // the helpers of the primary_*.hpp

namespace {

// Runs `sql` and adds one problem line per row, made by `describe`.
template <class Fn>
Result<void> collect(sqlite3* db, SqlText sql, std::vector<std::string>& problems, Fn&& describe) {
    return for_each_row(db, sql, [&](Query& q) { problems.push_back(describe(q)); });
}

// The key of `address` as unitctl would store it; "" when it is malformed.
std::string stored_key(const std::string& address) {
    if (!address.empty() && address[0] == '@') {
        auto d = normalize_domain(std::string_view(address).substr(1));
        return d ? "@" + d.value() : std::string();
    }
    auto a = parse_address(address);
    return a ? a->full() : std::string();
}

Result<void> check_keys(sqlite3* db, SqlText sql, const char* what, const std::unordered_set<std::string>& domains,
                        std::vector<std::string>& problems) {
    return for_each_row(db, sql, [&](Query& q) {
        std::string address = q.text(0);
        std::string key = stored_key(address);
        if (key.empty()) problems.push_back(fmt::format("{} {}: malformed address", what, address));
        else if (key != address)
            problems.push_back(fmt::format("{} {}: not normalised (expected {})", what, address, key));
        else if (!domains.count(std::string(domain_of(key))))
            problems.push_back(fmt::format("{} {}: domain {} is not served", what, address, domain_of(key)));
    });
}

// Alias targets in served domains must be stored keys too; external ones
// keep the case of their local part, so only their domain is checked.
Result<void> check_targets(sqlite3* db, const std::unordered_set<std::string>& domains,
                           std::vector<std::string>& problems) {
    return for_each_row(db, sql::aliases::targets, [&](Query& q) {
        std::string target = q.text(0);
        std::string key = stored_key(target);
        if (key.empty()) problems.push_back(fmt::format("alias target {}: malformed address", target));
        else if (domains.count(std::string(domain_of(key))) && key != target)
            problems.push_back(fmt::format("alias target {}: not normalised (expected {})", target, key));
    });
}

// Values that reach Postfix verbatim, as values.hpp wants them.
Result<void> check_values(sqlite3* db, std::string_view hold_transport, std::vector<std::string>& problems) {
    auto units = for_each_row(db, sql::units::routes, [&](Query& q) {
        for (auto r : {check_transport(q.text(1), hold_transport), check_nexthop(q.text(2))})
            if (!r) problems.push_back(fmt::format("unit {}: {}", q.text(0), r.error().message));
    });
    if (!units) return units;
    return for_each_row(db, sql::aliases::pairs_ordered, [&](Query& q) {
        if (auto r = check_alias_target(q.text(1)); !r)
            problems.push_back(fmt::format("alias {}: {}", q.text(0), r.error().message));
    });
}

// Dangling targets (problems), and aliases that deliver nowhere (warnings):
// every leaf of their expansion a disabled or unknown local address.
class Deliverability {
public:
    Deliverability(sqlite3* db, std::string delimiter)
        : db_(db), delimiter_(std::move(delimiter)), resolver_(db, delimiter_) {}

    Result<void> run(CheckReport& report) {
        auto r = for_each_row(db_, sql::aliases::pairs_ordered,
                              [&](Query& q) { targets_[q.text(0)].push_back(q.text(1)); });
        if (!r) return r;
        for (const auto& [alias, targets] : targets_) {
            for (const auto& target : targets) {
                auto resolves = resolver_.resolves(alias, target);
                if (!resolves) return resolves.error();
                if (!resolves.value()) report.problems.push_back(dangling_target(alias, target));
            }
        }
        for (const auto& [alias, targets] : targets_) {
            auto delivers = deliverable(alias);
            if (!delivers) return delivers.error();
            if (!delivers.value())
                report.warnings.push_back(
                    fmt::format("alias {}: every target is disabled or unknown: mail to it is refused", alias));
        }
        return {};
    }

private:
    // Whether some leaf of the alias's expansion takes mail. An alias met
    // again while it is expanded (a cycle, a problem of its own) counts as
    // deliverable: no warning on top of the problem.
    Result<bool> deliverable(const std::string& alias) {
        if (auto known = memo_.find(alias); known != memo_.end()) return known->second;
        memo_[alias] = true;
        bool any = false;
        for (const auto& target : targets_[alias]) {
            auto nested = targets_.find(target);
            auto r = nested != targets_.end() && target != alias ? deliverable(target)
                                                                 : leaf_deliverable(alias, target);
            if (!r) return r;
            any = r.value();
            if (any) break;
        }
        memo_[alias] = any;
        return any;
    }

    Result<bool> leaf_deliverable(const std::string& alias, const std::string& target) {
        auto served = domain_served(db_, domain_of(target));
        if (!served) return served.error();
        if (!served.value()) return true;  // an external address
        auto state = mailbox_state(target);
        if (!state) return state.error();
        if (!state->has_value() && !delimiter_.empty()) {
            auto parsed = normalize_address(target, AddressOptions{true, delimiter_});
            if (parsed && parsed->has_extension()) state = mailbox_state(parsed->base());
            if (!state) return state.error();
        }
        if (state->has_value()) return **state != "disabled";
        // No mailbox: a catch-all may take it; only an unknown one is dead.
        return resolver_.resolves(alias, target);
    }

    Result<std::optional<std::string>> mailbox_state(const std::string& address) {
        return query_text(db_, sql::mailboxes::state_of, {address});
    }

    sqlite3* db_;
    std::string delimiter_;
    TargetResolver resolver_;
    std::map<std::string, std::vector<std::string>> targets_;
    std::map<std::string, bool> memo_;
};

Result<void> check_resolving(sqlite3* db, const std::string& delimiter, CheckReport& report) {
    return Deliverability(db, delimiter).run(report);
}

// RFC 5321 wants postmaster@ at every served domain.
Result<void> check_postmasters(sqlite3* db, std::vector<std::string>& warnings) {
    return for_each_row(db, sql::check::domains_without_postmaster, [&](Query& q) {
        warnings.push_back(fmt::format("domain {}: no postmaster@{} (no mailbox, alias or catch-all)", q.text(0),
                                       q.text(0)));
    });
}

}  // namespace

Result<std::vector<std::string>> Primary::check() noexcept {
    auto report = check_report();
    if (!report) return report.error();
    return std::move(report->problems);
}

Result<CheckReport> Primary::check_report() noexcept {
    sqlite3* db = db_->db.get();
    const auto& options = db_->options;
    return guarded<CheckReport>([&]() -> Result<CheckReport> {
        auto txn = Transaction::begin(db, false);
        if (!txn) return txn.error();
        CheckReport report;
        auto& problems = report.problems;
        auto r = collect(db, sql::check::integrity, problems, [](Query& q) { return "integrity: " + q.text(0); });
        if (!r) return r.error();
        std::unordered_set<std::string> domains;
        if (auto d = for_each_row(db, sql::domains::names, [&](Query& q) { domains.insert(q.text(0)); }); !d)
            return d.error();
        // Each statement of sql::check with the words for its rows.
        struct Check {
            SqlText statement;
            std::function<std::string(Query&)> describe;
        };
        const Check checks[] = {
            {sql::check::mailbox_on_unknown_unit,
             [](Query& q) { return fmt::format("mailbox {}: on unknown unit {}", q.text(0), q.text(1)); }},
            {sql::check::moving_to_unknown_unit,
             [](Query& q) { return fmt::format("mailbox {}: moving to unknown unit {}", q.text(0), q.text(1)); }},
            {sql::check::moving_without_target,
             [](Query& q) { return fmt::format("mailbox {}: moving without moving_to", q.text(0)); }},
            {sql::check::target_without_moving,
             [](Query& q) { return fmt::format("mailbox {}: moving_to {} set but not moving", q.text(0), q.text(1)); }},
            {sql::check::bad_mailbox_state,
             [](Query& q) { return fmt::format("mailbox {}: bad state \"{}\"", q.text(0), q.text(1)); }},
            {sql::check::bad_unit_state,
             [](Query& q) { return fmt::format("unit {}: bad state \"{}\"", q.text(0), q.text(1)); }},
            {sql::check::generation_missing, [](Query&) { return std::string("meta: generation is missing"); }},
        };
        for (const auto& [statement, describe] : checks) {
            if (auto c = collect(db, statement, problems, describe); !c) return c.error();
        }
        if (auto c = check_keys(db, sql::mailboxes::addresses, "mailbox", domains, problems); !c) return c.error();
        if (auto c = check_keys(db, sql::aliases::addresses, "alias", domains, problems); !c) return c.error();
        if (auto c = check_targets(db, domains, problems); !c) return c.error();
        for (const auto& domain : domains) {
            auto normal = normalize_domain(domain);
            if (!normal || *normal != domain)
                problems.push_back(fmt::format("domain {}: not normalised{}", domain,
                                               normal ? fmt::format(" (expected {})", *normal) : std::string()));
        }
        auto aliases = alias_problems(db, options.max_alias_targets);
        if (!aliases) return aliases.error();
        problems.insert(problems.end(), aliases->begin(), aliases->end());
        if (auto c = check_values(db, options.hold_transport, problems); !c) return c.error();
        if (auto c = check_resolving(db, options.recipient_delimiter, report); !c) return c.error();
        if (auto c = check_postmasters(db, report.warnings); !c) return c.error();
        return report;
    });
}

}  // namespace unit
