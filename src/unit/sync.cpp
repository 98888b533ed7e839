// sync.cpp: Primary::sync() and the CSV source of sync.hpp.
#include "unit/sync.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <map>
#include <set>
#include <unordered_set>
#include <utility>

#include "unit/csv.hpp"
#include "unit/primary_support.hpp"
#include "unit/statements.hpp"
#include "unit/values.hpp"

namespace unit {

using namespace detail;  // the helpers of primary_support.hpp

// ------------------------------------------------------------ reporting

std::string to_string(const SyncChange& change) {
    static constexpr const char* kinds[] = {"domain", "unit", "mailbox", "alias"};
    static constexpr const char* actions[] = {"add", "change", "remove", "begin move of"};
    std::string text = fmt::format("{} {} {}", actions[static_cast<int>(change.action)],
                                   kinds[static_cast<int>(change.kind)], change.object);
    if (!change.detail.empty()) text += fmt::format(" ({})", change.detail);
    return text;
}

SyncCounts SyncPlan::all() const noexcept {
    SyncCounts sum;
    for (const auto* c : {&domains, &units, &mailboxes, &aliases}) {
        sum.added += c->added;
        sum.changed += c->changed;
        sum.removed += c->removed;
        sum.moves_begun += c->moves_begun;
    }
    return sum;
}

// ------------------------------------------------------------ CSV source

Result<SourceDirectory> read_csv_source(std::istream& in, const std::string& source,
                                        const std::function<void(std::uint64_t rows)>& progress) noexcept {
    return guarded<SourceDirectory>([&]() -> Result<SourceDirectory> {
        // A CSV speaks of every kind: what it lacks, the primary loses.
        SourceDirectory dir{std::vector<std::string>{}, std::vector<UnitRecord>{}, std::vector<MailboxRecord>{},
                            std::vector<AliasRecord>{}};
        auto at_line = [&](const CsvRow& row, const Error& e) {
            return make_error(e.code, fmt::format("{}:{}: {}", source, row.line, e.message));
        };
        auto end = read_export(in, source, [&](CsvRow& row) -> Result<void> {
            const std::string& kind = row.fields[0];
            if (kind == "domain") {
                dir.domains->push_back(std::move(row.fields[1]));
            } else if (kind == "unit") {
                auto unit = unit_from_row(row);
                if (!unit) return at_line(row, unit.error());
                dir.units->push_back(std::move(unit.value()));
            } else if (kind == "mailbox") {
                auto mailbox = mailbox_from_row(row);
                if (!mailbox) return at_line(row, mailbox.error());
                dir.mailboxes->push_back(std::move(mailbox.value()));
            } else {
                auto alias = alias_from_row(row);
                if (!alias) return at_line(row, alias.error());
                dir.aliases->push_back(std::move(alias.value()));
            }
            if (progress && row.line % 65536 == 0) progress(row.line);
            return {};
        });
        if (!end) return end.error();
        if (!end->ended)
            return make_error(Errc::Invalid, fmt::format("{}: truncated: no end row after {} rows (an export ends "
                                                         "with end,,ROWS,)",
                                                         source, end->rows));
        if (progress) progress(end->rows);
        return dir;
    });
}

// ------------------------------------------------------------ sync

namespace {

using NameSet = std::unordered_set<std::string>;
using AliasSet = std::set<std::pair<std::string, std::string>>;

// The primary as it is, loaded once: a merge against the sorted source is
// one pass over a million mailboxes instead of a million queries.
struct Current {
    NameSet domains;
    std::map<std::string, UnitRecord> units;
    std::vector<MailboxRecord> mailboxes;  // by address
    AliasSet aliases;
};

Result<Current> load_current(sqlite3* db) {
    Current now;
    auto r = for_each_row(db, sql::domains::names, [&](Query& q) { now.domains.insert(q.text(0)); });
    if (r)
        r = for_each_row(db, sql::units::all, [&](Query& q) {
            now.units[q.text(0)] = UnitRecord{q.text(0), q.text(1), q.text(2),
                                              parse_unit_state(q.text(3)).value_or(UnitState::Active)};
        });
    if (r)
        r = for_each_row(db, sql::mailboxes::all, [&](Query& q) {
            now.mailboxes.push_back(MailboxRecord{q.text(0), q.text(1),
                                                  parse_mailbox_state(q.text(2)).value_or(MailboxState::Active),
                                                  q.text(3)});
        });
    if (r) r = for_each_row(db, sql::aliases::pairs, [&](Query& q) { now.aliases.emplace(q.text(0), q.text(1)); });
    if (!r) return r.error();
    return now;
}

Error about(std::string_view kind, const std::string& object, const Error& e) {
    return make_error(e.code, fmt::format("{} {}: {}", kind, object, e.message));
}

// What the sync writes, by statement, in the order it writes it.
struct Writes {
    std::vector<std::string> add_domains, remove_domains;
    std::vector<UnitRecord> add_units, change_units;
    std::vector<std::string> remove_units;
    std::vector<MailboxRecord> add_mailboxes, change_mailboxes;
    std::vector<std::string> remove_mailboxes;
    AliasSet add_aliases, remove_aliases;
};

class Planner {
public:
    Planner(const Current& now, const SyncOptions& options, std::string_view hold_transport)
        : now_(now), options_(options), hold_transport_(hold_transport) {}

    Result<void> run(const SourceDirectory& source);
    SyncPlan plan;
    Writes writes;

private:
    void note(SyncCounts& counts, SyncKind kind, SyncAction action, const std::string& object, std::string detail);
    Result<void> plan_domains(const SourceDirectory& source);
    Result<void> plan_units(const SourceDirectory& source);
    Result<void> plan_mailboxes(std::vector<MailboxRecord> source);
    Result<void> compare(const MailboxRecord& was, const MailboxRecord& is);
    Result<void> plan_aliases(const SourceDirectory& source);
    Result<void> check_kept(const SourceDirectory& source);
    Result<void> check_removals(const SourceDirectory& source);

    const Current& now_;
    const SyncOptions& options_;
    std::string_view hold_transport_;
    NameSet domains_;  // served once the sync is applied
    NameSet units_;    // the units once the sync is applied
    std::uint64_t found_ = 0;
};

void Planner::note(SyncCounts& counts, SyncKind kind, SyncAction action, const std::string& object,
                   std::string detail) {
    switch (action) {
    case SyncAction::Add: ++counts.added; break;
    case SyncAction::Change: ++counts.changed; break;
    case SyncAction::Remove: ++counts.removed; break;
    case SyncAction::MoveBegun: ++counts.moves_begun; break;
    }
    if (options_.list_changes) plan.changes.push_back(SyncChange{kind, action, object, std::move(detail)});
    if (options_.progress && ++found_ % 4096 == 0) options_.progress(found_);
}

Result<void> Planner::plan_domains(const SourceDirectory& source) {
    if (!source.domains) {
        domains_ = now_.domains;
        return {};
    }
    for (const auto& text : *source.domains) {
        auto domain = normalize_domain(text);
        if (!domain) return about("domain", text, domain.error());
        if (!domains_.insert(domain.value()).second)
            return make_error(Errc::Invalid, fmt::format("domain {}: twice in the source", *domain));
        if (!now_.domains.count(*domain)) {
            writes.add_domains.push_back(*domain);
            note(plan.domains, SyncKind::Domain, SyncAction::Add, *domain, "");
        }
    }
    for (const auto& domain : std::set<std::string>(now_.domains.begin(), now_.domains.end())) {
        if (domains_.count(domain)) continue;
        writes.remove_domains.push_back(domain);
        note(plan.domains, SyncKind::Domain, SyncAction::Remove, domain, "");
    }
    return {};
}

Result<void> Planner::plan_units(const SourceDirectory& source) {
    if (!source.units) {
        for (const auto& [name, unit] : now_.units) units_.insert(name);
        return {};
    }
    for (const auto& unit : *source.units) {
        if (auto r = check_unit_fields(unit, hold_transport_); !r) return r;
        if (!units_.insert(unit.name).second)
            return make_error(Errc::Invalid, fmt::format("unit {}: twice in the source", unit.name));
        auto was = now_.units.find(unit.name);
        if (was == now_.units.end()) {
            writes.add_units.push_back(unit);
            note(plan.units, SyncKind::Unit, SyncAction::Add, unit.name,
                 fmt::format("{} {}", unit.route(), to_string(unit.state)));
        } else if (was->second.route() != unit.route() || was->second.state != unit.state) {
            writes.change_units.push_back(unit);
            note(plan.units, SyncKind::Unit, SyncAction::Change, unit.name,
                 fmt::format("{} {} -> {} {}", was->second.route(), to_string(was->second.state), unit.route(),
                             to_string(unit.state)));
        }
    }
    for (const auto& [name, unit] : now_.units) {
        if (units_.count(name)) continue;
        writes.remove_units.push_back(name);
        note(plan.units, SyncKind::Unit, SyncAction::Remove, name, "");
    }
    return {};
}

std::string describe(const MailboxRecord& m) {
    return m.state == MailboxState::Moving ? fmt::format("{} moving to {}", m.unit, m.moving_to)
                                           : fmt::format("{} {}", m.unit, to_string(m.state));
}

// One mailbox in both: the record the source wants, as a write.
Result<void> Planner::compare(const MailboxRecord& was, const MailboxRecord& source) {
    MailboxRecord is = source;
    SyncAction action = SyncAction::Change;
    const bool moving = was.state == MailboxState::Moving;
    if (source.state == MailboxState::Moving) {
        // The source tracks moves itself: taken as it is.
    } else if (source.state == MailboxState::Active && moving && source.unit == was.unit) {
        return {};  // the source still names the unit it moves from: the move goes on
    } else if (options_.direct || source.state != MailboxState::Active) {
        // --direct: the source changes the unit once the copy is done. A
        // suspended or disabled mailbox receives no mail to hold.
    } else if (source.unit != was.unit) {
        if (moving && was.moving_to == source.unit) return {};  // already under way
        is = MailboxRecord{was.address, was.unit, MailboxState::Moving, source.unit};
        action = SyncAction::MoveBegun;
    }
    if (is.unit == was.unit && is.state == was.state && is.moving_to == was.moving_to) return {};
    writes.change_mailboxes.push_back(is);
    note(plan.mailboxes, SyncKind::Mailbox, action, is.address, fmt::format("{} -> {}", describe(was), describe(is)));
    return {};
}

Result<void> Planner::plan_mailboxes(std::vector<MailboxRecord> source) {
    for (auto& mailbox : source) {
        const std::string spelled = mailbox.address;
        if (auto r = check_mailbox(mailbox, domains_, units_); !r) {
            const bool unit_missing = r.error().code == Errc::NotFound;
            return make_error(r.error().code, fmt::format("mailbox {}: {}{}", spelled, r.error().message,
                                                          unit_missing ? " (a sync never creates a unit)" : ""));
        }
    }
    std::sort(source.begin(), source.end(),
              [](const MailboxRecord& a, const MailboxRecord& b) { return a.address < b.address; });
    auto was = now_.mailboxes.begin();
    for (std::size_t i = 0; i < source.size(); ++i) {
        const auto& is = source[i];
        if (i > 0 && source[i - 1].address == is.address)
            return make_error(Errc::Invalid, fmt::format("mailbox {}: twice in the source", is.address));
        for (; was != now_.mailboxes.end() && was->address < is.address; ++was) {
            writes.remove_mailboxes.push_back(was->address);
            note(plan.mailboxes, SyncKind::Mailbox, SyncAction::Remove, was->address, describe(*was));
        }
        if (was != now_.mailboxes.end() && was->address == is.address) {
            if (auto r = compare(*was, is); !r) return r;
            ++was;
        } else {
            writes.add_mailboxes.push_back(is);
            note(plan.mailboxes, SyncKind::Mailbox, SyncAction::Add, is.address, describe(is));
        }
    }
    for (; was != now_.mailboxes.end(); ++was) {
        writes.remove_mailboxes.push_back(was->address);
        note(plan.mailboxes, SyncKind::Mailbox, SyncAction::Remove, was->address, describe(*was));
    }
    return {};
}

Result<void> Planner::plan_aliases(const SourceDirectory& source) {
    if (!source.aliases) return {};
    AliasSet wanted;
    for (const auto& alias : *source.aliases) {
        auto key = alias_key(domains_, alias.address);
        if (!key) return about("alias", alias.address, key.error());
        auto target = alias_target(domains_, alias.target);
        if (!target) return about("alias", alias.address, target.error());
        wanted.emplace(std::move(key.value()), std::move(target.value()));
    }
    for (const auto& row : now_.aliases) {
        if (wanted.count(row)) continue;
        writes.remove_aliases.insert(row);
        note(plan.aliases, SyncKind::Alias, SyncAction::Remove, row.first, "-> " + row.second);
    }
    for (const auto& row : wanted) {
        if (now_.aliases.count(row)) continue;
        writes.add_aliases.insert(row);
        note(plan.aliases, SyncKind::Alias, SyncAction::Add, row.first, "-> " + row.second);
    }
    return {};
}

// What the source does not speak of is kept: it must still have its unit
// and domain once the sync is applied.
Result<void> Planner::check_kept(const SourceDirectory& source) {
    const std::unordered_set<std::string> changed = [&] {
        std::unordered_set<std::string> set;
        for (const auto& m : writes.change_mailboxes) set.insert(m.address);
        return set;
    }();
    if (!writes.remove_units.empty() || (!writes.remove_domains.empty() && !source.mailboxes)) {
        NameSet removed(writes.remove_mailboxes.begin(), writes.remove_mailboxes.end());
        for (const auto& m : now_.mailboxes) {
            if (removed.count(m.address) || changed.count(m.address)) continue;  // checked by plan_mailboxes
            for (const auto* unit : {&m.unit, &m.moving_to})
                if (!unit->empty() && !units_.count(*unit))
                    return make_error(Errc::Conflict, fmt::format("unit {}: the source removes it, but mailbox {} "
                                                                  "still uses it",
                                                                  *unit, m.address));
            if (!domains_.count(std::string(domain_of(m.address))))
                return make_error(Errc::Conflict, fmt::format("domain {}: the source removes it, but mailbox {} "
                                                              "is still in it",
                                                              domain_of(m.address), m.address));
        }
    }
    // A move begun keeps the mailbox on the unit it leaves until it is finished.
    for (const auto& m : writes.change_mailboxes)
        if (!units_.count(m.unit))
            return make_error(Errc::Conflict, fmt::format("unit {}: the source removes it, but mailbox {} stays on it "
                                                          "until its move to {} is finished (or use --direct)",
                                                          m.unit, m.address, m.moving_to));
    if (!writes.remove_domains.empty() && !source.aliases) {
        for (const auto& [address, target] : now_.aliases)
            if (!domains_.count(std::string(domain_of(address))))
                return make_error(Errc::Conflict, fmt::format("domain {}: the source removes it, but alias {} is "
                                                              "still in it",
                                                              domain_of(address), address));
    }
    return {};
}

Result<void> Planner::check_removals(const SourceDirectory& source) {
    const auto total = static_cast<std::int64_t>(now_.mailboxes.size());
    if (source.mailboxes && source.mailboxes->empty() && total > 0)
        return make_error(Errc::Conflict, fmt::format("the source has no mailboxes at all: refusing to remove all {} "
                                                      "(an empty or failed export?)",
                                                      total));
    const auto removed = static_cast<std::int64_t>(writes.remove_mailboxes.size());
    const auto limit = removal_limit(options_.max_removed, total);
    if (removed <= limit) return {};
    std::vector<std::string> first(writes.remove_mailboxes.begin(),
                                   writes.remove_mailboxes.begin() + std::min<std::int64_t>(removed, 5));
    return make_error(Errc::Conflict,
                      fmt::format("the sync removes {} of the {} mailboxes, more than {} ({}): refusing "
                                  "it (--max-removed raises the limit)",
                                  removed, total, limit, first_addresses(first, removed)));
}

Result<void> Planner::run(const SourceDirectory& source) {
    if (auto r = plan_domains(source); !r) return r;
    if (auto r = plan_units(source); !r) return r;
    if (source.mailboxes) {
        if (auto r = plan_mailboxes(*source.mailboxes); !r) return r;
    }
    if (auto r = plan_aliases(source); !r) return r;
    if (auto r = check_kept(source); !r) return r;
    return check_removals(source);
}

// Runs one prepared statement for each item of `items`.
template <class Items, class Bind>
Result<void> run_each(sqlite3* db, SqlText sql, const Items& items, Bind&& bind) {
    if (items.empty()) return {};
    auto stmt = prepare(db, sql);
    if (!stmt) return stmt.error();
    for (const auto& item : items) {
        Query q(stmt->get());
        bind(q, item);
        if (auto r = q.run(); !r) return r;
    }
    return {};
}

Result<void> apply(sqlite3* db, const Writes& w) {
    auto name = [](Query& q, const std::string& n) { q.bind(1, n); };
    auto unit = [](Query& q, const UnitRecord& u) {
        q.bind(1, u.name).bind(2, u.transport).bind(3, u.nexthop).bind(4, to_string(u.state));
    };
    auto mailbox = [](Query& q, const MailboxRecord& m) {
        q.bind(1, m.address).bind(2, m.unit).bind(3, to_string(m.state));
        if (m.state == MailboxState::Moving) q.bind(4, m.moving_to);
        else q.bind_null(4);
    };
    auto alias = [](Query& q, const std::pair<std::string, std::string>& a) { q.bind(1, a.first).bind(2, a.second); };
    auto r = run_each(db, sql::domains::insert, w.add_domains, name);
    if (r) r = run_each(db, sql::units::insert, w.add_units, unit);
    if (r) r = run_each(db, sql::units::update, w.change_units, unit);
    if (r) r = run_each(db, sql::aliases::remove_pair, w.remove_aliases, alias);
    if (r) r = run_each(db, sql::mailboxes::remove, w.remove_mailboxes, name);
    if (r) r = run_each(db, sql::mailboxes::update, w.change_mailboxes, mailbox);
    if (r) r = run_each(db, sql::mailboxes::insert_full, w.add_mailboxes, mailbox);
    if (r) r = run_each(db, sql::aliases::insert, w.add_aliases, alias);
    if (r) r = run_each(db, sql::units::remove, w.remove_units, name);
    if (r) r = run_each(db, sql::domains::remove, w.remove_domains, name);
    return r;
}

// The alias rules import enforces, on the directory as the sync leaves it:
// every target resolves, no cycle, no expansion past max_alias_targets.
Result<void> check_aliases(sqlite3* db, const PrimaryOptions& options) {
    TargetResolver resolver(db, options.recipient_delimiter);
    std::optional<Error> dangling;
    auto r = for_each_row(db, sql::aliases::pairs_ordered, [&](Query& q) {
        if (dangling) return;
        auto resolves = resolver.resolves(q.text(0), q.text(1));
        if (!resolves) dangling = resolves.error();
        else if (!resolves.value()) dangling = make_error(Errc::Conflict, dangling_target(q.text(0), q.text(1)));
    });
    if (!r) return r;
    if (dangling) return *dangling;
    return refuse_alias_problems(db, options.max_alias_targets);
}

}  // namespace

Result<SyncPlan> Primary::sync(const SourceDirectory& source, const SyncOptions& options) noexcept {
    sqlite3* db = db_->db.get();
    return guarded<SyncPlan>([&]() -> Result<SyncPlan> {
        if (auto r = exec(db, sql::settings::cache_256mib); !r) return r.error();  // as import
        // The write lock from the start: the primary cannot change between
        // the comparison and the writes.
        auto txn = Transaction::begin(db, true);
        if (!txn) return txn.error();
        auto now = load_current(db);
        if (!now) return now.error();
        Planner planner(*now, options, db_->options.hold_transport);
        if (auto r = planner.run(source); !r) return r.error();
        SyncPlan plan = std::move(planner.plan);
        auto before = read_meta(db);
        if (!before) return before.error();
        plan.generation = before->generation;
        if (plan.all().total() == 0) return plan;  // nothing to write: the generation stays
        const Writes& w = planner.writes;
        if (auto r = apply(db, w); !r) return r.error();
        const bool aliases_touched = !w.add_aliases.empty() || !w.remove_aliases.empty() ||
                                     !w.remove_mailboxes.empty() || !w.remove_domains.empty();
        if (aliases_touched) {
            if (auto r = check_aliases(db, db_->options); !r) return r.error();
        }
        auto after = read_meta(db);
        if (!after) return after.error();
        // A dry run has checked everything the real one checks; the
        // transaction's destructor rolls its writes back.
        if (options.dry_run) return plan;
        if (auto r = txn->commit(); !r) return r.error();
        plan.generation = after->generation;
        return plan;
    });
}

}  // namespace unit
