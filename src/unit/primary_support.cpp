#include "unit/primary_support.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <ctime>
#include <functional>
#include <map>

#include "unit/directory.hpp"
#include "unit/values.hpp"

namespace unit::detail {

namespace {

// Finds alias cycles, chains deeper than the resolver follows and
// expansions that visit more rows than the resolver's work limit, in an
// alias -> targets graph. A self-reference is not a cycle (virtual(5)).
class AliasGraph {
public:
    explicit AliasGraph(int max_alias_targets) : max_rows_(max_alias_targets) {}
    void add(const std::string& alias, const std::string& target) {
        auto& edges = edges_[alias];
        if (alias != target) edges.push_back(target);
        ++own_rows_[alias];
    }
    std::vector<std::string> problems() {
        for (const auto& [alias, targets] : edges_) visit(alias, 0);
        for (const auto& [alias, rows] : rows_)
            if (rows > max_rows_)
                problems_.push_back(fmt::format("alias {}: its expansion visits {}{} alias rows, more than max_alias_targets {}",
                                                alias, rows >= saturated ? "over " : "", std::min(rows, saturated),
                                                max_rows_));
        return std::move(problems_);
    }

private:
    enum class Mark { Open, Done };
    static constexpr std::int64_t saturated = 1'000'000'000;
    struct Visit {
        int height = 0;         // the chain length below the alias
        std::int64_t rows = 0;  // alias rows its expansion reads, as the resolver reads them
    };
    Visit visit(const std::string& alias, int depth) {
        auto edges = edges_.find(alias);
        if (edges == edges_.end()) return {};
        if (auto m = marks_.find(alias); m != marks_.end()) {
            if (m->second == Mark::Open) report_cycle(alias);
            return m->second == Mark::Done ? Visit{heights_[alias], rows_[alias]} : Visit{};
        }
        marks_[alias] = Mark::Open;
        stack_.push_back(alias);
        Visit here{0, own_rows_[alias]};
        for (const auto& t : edges->second) {
            Visit below = visit(t, depth + 1);
            here.height = std::max(here.height, 1 + below.height);
            here.rows = std::min(saturated, here.rows + below.rows);
        }
        stack_.pop_back();
        marks_[alias] = Mark::Done;
        heights_[alias] = here.height;
        rows_[alias] = here.rows;
        if (here.height > max_alias_depth && depth == 0)
            problems_.push_back(
                fmt::format("alias {}: chain of {} aliases, deeper than {}", alias, here.height, max_alias_depth));
        return here;
    }
    void report_cycle(const std::string& alias) {
        auto start = std::find(stack_.begin(), stack_.end(), alias);
        std::string chain;
        for (auto it = start; it != stack_.end(); ++it) chain += *it + " -> ";
        problems_.push_back(fmt::format("alias cycle: {}{}", chain, alias));
    }

    std::int64_t max_rows_;
    std::map<std::string, std::vector<std::string>> edges_;
    std::map<std::string, std::int64_t> own_rows_;
    std::map<std::string, Mark> marks_;
    std::map<std::string, int> heights_;
    std::map<std::string, std::int64_t> rows_;
    std::vector<std::string> stack_;
    std::vector<std::string> problems_;
};

}  // namespace

// ------------------------------------------------------------ statements

// Runs `sql` with text parameters ?1..?N and returns the first column of
// the first row, or nullopt when there is no row.
Result<std::optional<std::string>> query_text(sqlite3* db, std::string_view sql,
                                              std::initializer_list<std::string_view> params) {
    auto stmt = prepare(db, sql);
    if (!stmt) return stmt.error();
    Query q(stmt->get());
    int i = 0;
    for (auto p : params) q.bind(++i, p);
    auto row = q.step();
    if (!row) return row.error();
    if (!row.value()) return std::optional<std::string>();
    return std::optional<std::string>(q.text(0));
}

Result<void> run(sqlite3* db, std::string_view sql, std::initializer_list<std::optional<std::string>> params) {
    auto stmt = prepare(db, sql);
    if (!stmt) return stmt.error();
    Query q(stmt->get());
    int i = 0;
    for (const auto& p : params) q.bind_optional(++i, p);
    return q.run();
}

Result<bool> exists(sqlite3* db, std::string_view sql, std::initializer_list<std::string_view> params) {
    auto row = query_text(db, sql, params);
    if (!row) return row.error();
    return row->has_value();
}

Result<std::int64_t> count(sqlite3* db, std::string_view sql, std::initializer_list<std::string_view> params) {
    auto row = query_text(db, sql, params);
    if (!row) return row.error();
    return row->has_value() ? std::atoll((*row)->c_str()) : 0;
}

// ------------------------------------------------------------ values

bool is_name(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), [](unsigned char c) {
        return std::isalnum(c) || c == '-' || c == '_' || c == '.';
    });
}

Result<void> check_unit_fields(const UnitRecord& u, std::string_view hold_transport) {
    if (!is_name(u.name))
        return make_error(Errc::Invalid, fmt::format("unit \"{}\": a name is letters, digits, '-', '_' and '.'", u.name));
    if (auto r = check_transport(u.transport, hold_transport); !r)
        return make_error(r.error().code, fmt::format("unit {}: {}", u.name, r.error().message));
    if (auto r = check_nexthop(u.nexthop); !r)
        return make_error(r.error().code, fmt::format("unit {}: {}", u.name, r.error().message));
    return {};
}

// The stored key of a mailbox or alias address (no extension splitting).
Result<Address> parse_address(const std::string& text) {
    return normalize_address(text, AddressOptions{true, ""});
}

std::string_view domain_of(std::string_view address) {
    auto at = address.rfind('@');
    return at == std::string_view::npos ? std::string_view{} : address.substr(at + 1);
}

Result<bool> domain_served(sqlite3* db, std::string_view domain) {
    return exists(db, "SELECT 1 FROM domains WHERE name = ?1", {domain});
}

namespace {

using Served = std::function<Result<bool>(std::string_view)>;

// An alias key: an address, or "@domain" for the domain's catch-all.
Result<std::string> key_of_alias(const Served& served, const std::string& text) {
    std::string key;
    std::string domain;
    if (!text.empty() && text[0] == '@') {
        auto d = normalize_domain(std::string_view(text).substr(1));
        if (!d) return d.error();
        domain = d.value();
        key = "@" + domain;
    } else {
        auto a = parse_address(text);
        if (!a) return a.error();
        domain = a->domain;
        key = a->full();
    }
    auto is_served = served(domain);
    if (!is_served) return is_served.error();
    if (!is_served.value()) return make_error(Errc::Conflict, fmt::format("domain {} is not served", domain));
    return key;
}

// An alias target: a local address is folded like every key; the local part
// of an external address keeps its case (other systems may care).
Result<std::string> stored_target(const Served& served, const std::string& text) {
    auto folded = parse_address(text);
    if (!folded) return folded.error();
    auto is_served = served(folded->domain);
    if (!is_served) return is_served.error();
    if (is_served.value()) return folded->full();
    auto kept = normalize_address(text, AddressOptions{false, ""});
    if (!kept) return kept.error();
    return kept->full();
}

// The stored form is checked too: normalising quotes a local part that is
// not a dot-atom ("m."@example.com), and a quote cannot travel in the
// alias map's comma-separated answer, so check() would report the row.
Result<std::string> target_of_alias(const Served& served, const std::string& text) {
    if (auto r = check_alias_target(text); !r) return r.error();
    auto stored = stored_target(served, text);
    if (!stored) return stored;
    if (!check_alias_target(stored.value()))
        return make_error(Errc::Invalid, fmt::format("bad alias target \"{}\": its local part needs quoting ({}), "
                                                     "which an alias target cannot have",
                                                     text, stored.value()));
    return stored;
}

Served served_in(sqlite3* db) {
    return [db](std::string_view domain) { return domain_served(db, domain); };
}

Served served_in(const DomainSet& domains) {
    return [&domains](std::string_view domain) -> Result<bool> { return domains.count(std::string(domain)) != 0; };
}

}  // namespace

Result<std::string> alias_key(sqlite3* db, const std::string& text) { return key_of_alias(served_in(db), text); }
Result<std::string> alias_target(sqlite3* db, const std::string& text) { return target_of_alias(served_in(db), text); }
Result<std::string> alias_key(const DomainSet& served, const std::string& text) {
    return key_of_alias(served_in(served), text);
}
Result<std::string> alias_target(const DomainSet& served, const std::string& text) {
    return target_of_alias(served_in(served), text);
}

Result<void> check_mailbox(MailboxRecord& mailbox, const DomainSet& domains, const std::unordered_set<std::string>& units) {
    return check_mailbox(mailbox, served_in(domains),
                         [&units](std::string_view unit) -> Result<bool> { return units.count(std::string(unit)) != 0; });
}

Result<void> check_mailbox(MailboxRecord& mailbox, const NameCheck& served, const NameCheck& unit_exists) {
    auto address = parse_address(mailbox.address);
    if (!address) return address.error();
    auto is_served = served(address->domain);
    if (!is_served) return is_served.error();
    if (!is_served.value()) return make_error(Errc::Conflict, fmt::format("domain {} is not served", address->domain));
    mailbox.address = address->full();
    auto unit = unit_exists(mailbox.unit);
    if (!unit) return unit.error();
    if (!unit.value()) return make_error(Errc::NotFound, fmt::format("unit {}: no such unit", mailbox.unit));
    if (mailbox.state == MailboxState::Moving) {
        auto moving_to = unit_exists(mailbox.moving_to);
        if (!moving_to) return moving_to.error();
        if (!moving_to.value())
            return make_error(Errc::NotFound, fmt::format("unit {}: no such unit", mailbox.moving_to));
        if (mailbox.moving_to == mailbox.unit)
            return make_error(Errc::Conflict, fmt::format("mailbox {}: moving to its own unit", mailbox.address));
    }
    return {};
}

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

std::string utc_now() {
    std::time_t now = std::time(nullptr);
    std::tm tm{};
    gmtime_r(&now, &tm);
    char buffer[32];
    std::strftime(buffer, sizeof buffer, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return buffer;
}

// ------------------------------------------------------------ alias graph

Result<std::vector<std::string>> alias_problems(sqlite3* db, int max_alias_targets) {
    AliasGraph graph(max_alias_targets);
    auto r = for_each_row(db, "SELECT address, target FROM aliases", [&](Query& q) { graph.add(q.text(0), q.text(1)); });
    if (!r) return r.error();
    return graph.problems();
}

Result<void> refuse_alias_problems(sqlite3* db, int max_alias_targets) {
    auto problems = alias_problems(db, max_alias_targets);
    if (!problems) return problems.error();
    if (!problems->empty()) return make_error(Errc::Conflict, problems->front());
    return {};
}

Result<bool> TargetResolver::resolves(const std::string& alias, const std::string& target) {
    auto domain = std::string(domain_of(target));
    auto served = domain_served(db_, domain);
    if (!served) return served.error();
    if (!served.value()) return true;  // an external address
    auto found = [&](const std::string& key) -> Result<bool> {
        auto mailbox = exists(db_, "SELECT 1 FROM mailboxes WHERE address = ?1", {key});
        if (!mailbox || mailbox.value() || key == alias) return mailbox;
        return exists(db_, "SELECT 1 FROM aliases WHERE address = ?1", {key});
    };
    auto exact = found(target);
    if (!exact || exact.value()) return exact;
    if (!delimiter_.empty()) {
        // As the resolver: an extended target lands in the base's mailbox.
        auto parsed = normalize_address(target, AddressOptions{true, delimiter_});
        if (parsed && parsed->has_extension()) {
            auto base = exists(db_, "SELECT 1 FROM mailboxes WHERE address = ?1", {parsed->base()});
            if (!base || base.value()) return base;
        }
    }
    return exists(db_, "SELECT 1 FROM aliases WHERE address = ?1", {"@" + domain});
}

std::string dangling_target(const std::string& alias, const std::string& target) {
    return fmt::format("alias {} -> {}: {} does not resolve (no mailbox, alias or catch-all in its served domain)",
                       alias, target, target);
}

// ------------------------------------------------------------ meta

Result<void> ensure_primary_id(sqlite3* db) {
    // SQLite's randomness is seeded from the operating system's.
    return run(db, "INSERT OR IGNORE INTO meta (key, value) VALUES ('primary_id', lower(hex(randomblob(16))))", {});
}

Result<DatabaseMeta> read_meta(sqlite3* db) {
    DatabaseMeta meta;
    auto generation = query_text(db, "SELECT value FROM meta WHERE key = 'generation'", {});
    if (!generation) return generation.error();
    if (!generation->has_value()) return make_error(Errc::Corrupt, "meta.generation is missing");
    meta.generation = std::atoll((*generation)->c_str());
    for (auto [key, field] : {std::pair{"primary_id", &meta.primary_id}, std::pair{"published_at", &meta.published_at},
                              std::pair{"publish_override", &meta.publish_override}}) {
        auto value = query_text(db, "SELECT value FROM meta WHERE key = ?1", {key});
        if (!value) return value.error();
        *field = std::move(value.value());
    }
    return meta;
}

// ------------------------------------------------------------ schema

Result<int> read_schema_version(sqlite3* db) {
    auto table = exists(db, "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'meta'", {});
    if (!table) return table.error();
    if (!table.value()) return 0;
    auto value = query_text(db, "SELECT value FROM meta WHERE key = 'schema_version'", {});
    if (!value) return value.error();
    return value->has_value() ? std::atoi((*value)->c_str()) : 0;
}

Result<void> apply_migration(sqlite3* db, const Migration& m) {
    auto txn = Transaction::begin(db, true);
    if (!txn) return txn.error();
    if (sqlite3_exec(db, std::string(m.sql).c_str(), nullptr, nullptr, nullptr) != SQLITE_OK)
        return db_error(db, fmt::format("migration {}", m.name));
    auto version = read_schema_version(db);
    if (!version) return version.error();
    if (version.value() != m.version)
        return make_error(Errc::Corrupt, fmt::format("migration {} did not set schema_version {}", m.name, m.version));
    return txn->commit();
}

Result<DbHandle> open_rw(const std::string& path, bool create) {
    int flags = SQLITE_OPEN_READWRITE | (create ? SQLITE_OPEN_CREATE : 0);
    auto db = open_database(path, flags, primary_busy_timeout_ms);
    if (!db) return db.error();
    if (auto r = exec(db->get(), "PRAGMA foreign_keys = ON"); !r) return r.error();
    return db;
}

}  // namespace unit::detail
