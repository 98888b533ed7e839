// The Primary calls that handle the whole database at once: CSV import and
// export, check, publish.
#include <fcntl.h>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <algorithm>
#include <cstring>
#include <filesystem>
#include <functional>
#include <unordered_set>

#include "unit/csv.hpp"
#include "unit/directory.hpp"
#include "unit/primary.hpp"
#include "unit/primary_support.hpp"

namespace unit {

using namespace detail;  // the helpers of primary_support.hpp

// ------------------------------------------------------------ import

namespace {

// The rows of an import file by kind, applied in dependency order
// (domains, units, mailboxes, aliases) whatever their order in the file.
struct ImportPlan {
    std::vector<CsvRow> domains, units, mailboxes, aliases;
};

Error at_line(const std::string& source, const CsvRow& row, const Error& e) {
    return make_error(e.code, fmt::format("{}:{}: {}", source, row.line, e.message));
}

Result<ImportPlan> read_plan(std::istream& in, const std::string& source) {
    CsvReader reader(in);
    auto header = reader.next();
    if (!header) return make_error(Errc::Invalid, fmt::format("{}: {}", source, header.error().message));
    const std::vector<std::string> expected{"kind", "address", "value", "state"};
    if (!header.value() || (header.value()->fields != expected &&
                            header.value()->fields != std::vector<std::string>(expected.begin(), expected.end() - 1)))
        return make_error(Errc::Invalid, fmt::format("{}:1: the header must be kind,address,value,state", source));
    ImportPlan plan;
    for (;;) {
        auto row = reader.next();
        if (!row) return make_error(Errc::Invalid, fmt::format("{}: {}", source, row.error().message));
        if (!row.value()) return plan;
        CsvRow& r = *row.value();
        if (r.fields.size() < 3 || r.fields.size() > 4)
            return make_error(Errc::Invalid, fmt::format("{}:{}: expected 3 or 4 fields, found {}", source, r.line,
                                                         r.fields.size()));
        r.fields.resize(4);
        const std::string& kind = r.fields[0];
        if (kind == "domain") plan.domains.push_back(std::move(r));
        else if (kind == "unit") plan.units.push_back(std::move(r));
        else if (kind == "mailbox") plan.mailboxes.push_back(std::move(r));
        else if (kind == "alias") plan.aliases.push_back(std::move(r));
        else return make_error(Errc::Invalid, fmt::format("{}:{}: unknown kind \"{}\"", source, r.line, kind));
    }
}

Result<UnitRecord> unit_from_row(const CsvRow& row) {
    const auto& value = row.fields[2];
    auto colon = value.find(':');
    if (colon == std::string::npos)
        return make_error(Errc::Invalid, fmt::format("unit {}: value \"{}\" is not transport:nexthop", row.fields[1], value));
    UnitRecord unit{row.fields[1], value.substr(0, colon), value.substr(colon + 1), UnitState::Active};
    if (!row.fields[3].empty()) {
        auto state = parse_unit_state(row.fields[3]);
        if (!state) return make_error(Errc::Invalid, fmt::format("unit {}: bad state \"{}\"", unit.name, row.fields[3]));
        unit.state = *state;
    }
    return unit;
}

// Imports mailboxes with one prepared statement and in-memory sets of the
// served domains and units: a million rows in seconds.
class MailboxImporter {
public:
    static Result<MailboxImporter> create(sqlite3* db) {
        auto insert = prepare(db, "INSERT INTO mailboxes (address, unit, state, moving_to) VALUES (?1, ?2, ?3, ?4)");
        if (!insert) return insert.error();
        MailboxImporter importer(db, std::move(insert.value()));
        if (auto r = importer.load("SELECT name FROM domains", importer.domains_); !r) return r.error();
        if (auto r = importer.load("SELECT name FROM units", importer.units_); !r) return r.error();
        return importer;
    }

    Result<void> add(const CsvRow& row) {
        auto address = parse_address(row.fields[1]);
        if (!address) return address.error();
        if (!domains_.count(address->domain))
            return make_error(Errc::Conflict, fmt::format("domain {} is not served", address->domain));
        const std::string& unit = row.fields[2];
        if (!units_.count(unit)) return make_error(Errc::NotFound, fmt::format("unit {}: no such unit", unit));
        std::string state_text = row.fields[3].empty() ? "active" : row.fields[3];
        std::optional<std::string> moving_to;
        if (state_text.rfind("moving:", 0) == 0) {
            moving_to = state_text.substr(7);
            state_text = "moving";
            if (!units_.count(*moving_to)) return make_error(Errc::NotFound, fmt::format("unit {}: no such unit", *moving_to));
            if (*moving_to == unit)
                return make_error(Errc::Conflict, fmt::format("mailbox {}: moving to its own unit", address->full()));
        } else if (state_text == "moving" || !parse_mailbox_state(state_text)) {
            return make_error(Errc::Invalid, fmt::format("mailbox {}: bad state \"{}\"", address->full(), row.fields[3]));
        }
        std::string key = address->full();
        Query q(insert_.get());
        q.bind(1, key).bind(2, unit).bind(3, state_text).bind_optional(4, moving_to);
        if (auto r = q.run(); !r) {
            if (r.error().code == Errc::Conflict)
                return make_error(Errc::Conflict, fmt::format("mailbox {}: already exists", key));
            return r;
        }
        return {};
    }

private:
    MailboxImporter(sqlite3* db, StmtHandle insert) : db_(db), insert_(std::move(insert)) {}
    Result<void> load(const char* sql, std::unordered_set<std::string>& into) {
        return for_each_row(db_, sql, [&](Query& q) { into.insert(q.text(0)); });
    }

    sqlite3* db_;
    StmtHandle insert_;
    std::unordered_set<std::string> domains_, units_;
};

Result<void> import_domain(sqlite3* db, const CsvRow& row) {
    auto domain = normalize_domain(row.fields[1]);
    if (!domain) return domain.error();
    auto served = domain_served(db, *domain);
    if (!served) return served.error();
    if (served.value()) return make_error(Errc::Conflict, fmt::format("domain {}: already served", *domain));
    return run(db, "INSERT INTO domains (name) VALUES (?1)", {*domain});
}

Result<void> import_unit(sqlite3* db, const CsvRow& row) {
    auto unit = unit_from_row(row);
    if (!unit) return unit.error();
    if (auto r = check_unit_fields(*unit); !r) return r;
    auto dup = exists(db, "SELECT 1 FROM units WHERE name = ?1", {unit->name});
    if (!dup) return dup.error();
    if (dup.value()) return make_error(Errc::Conflict, fmt::format("unit {}: already exists", unit->name));
    return run(db, "INSERT INTO units (name, transport, nexthop, state) VALUES (?1, ?2, ?3, ?4)",
               {unit->name, unit->transport, unit->nexthop, std::string(to_string(unit->state))});
}

Result<void> import_alias(sqlite3* db, const CsvRow& row) {
    if (!row.fields[3].empty())
        return make_error(Errc::Invalid, fmt::format("alias {}: an alias has no state", row.fields[1]));
    auto key = alias_key(db, row.fields[1]);
    if (!key) return key.error();
    auto target = alias_target(db, row.fields[2]);
    if (!target) return target.error();
    auto dup = exists(db, "SELECT 1 FROM aliases WHERE address = ?1 AND target = ?2", {*key, *target});
    if (!dup) return dup.error();
    if (dup.value()) return make_error(Errc::Conflict, fmt::format("alias {} -> {}: already exists", *key, *target));
    return run(db, "INSERT INTO aliases (address, target) VALUES (?1, ?2)", {*key, *target});
}

template <class Fn>
Result<void> apply_rows(const std::vector<CsvRow>& rows, const std::string& source, Fn&& fn) {
    for (const auto& row : rows) {
        if (auto r = fn(row); !r) return at_line(source, row, r.error());
    }
    return {};
}

}  // namespace

Result<ImportStats> Primary::import_csv(std::istream& in, const std::string& source) noexcept {
    sqlite3* db = db_->db.get();
    // A large page cache keeps a big import's pages in memory until commit
    // instead of spilling them to the WAL over and over.
    if (auto r = exec(db, "PRAGMA cache_size = -262144"); !r) return r.error();
    return in_transaction<ImportStats>(db, [&]() -> Result<ImportStats> {
        auto plan = read_plan(in, source);
        if (!plan) return plan.error();
        if (auto r = apply_rows(plan->domains, source, [&](const CsvRow& row) { return import_domain(db, row); }); !r)
            return r.error();
        if (auto r = apply_rows(plan->units, source, [&](const CsvRow& row) { return import_unit(db, row); }); !r)
            return r.error();
        // Inserting in key order fills b-tree pages one after the other instead
        // of splitting pages all over the table: several times faster at 1M rows.
        std::stable_sort(plan->mailboxes.begin(), plan->mailboxes.end(),
                         [](const CsvRow& a, const CsvRow& b) { return a.fields[1] < b.fields[1]; });
        auto importer = MailboxImporter::create(db);
        if (!importer) return importer.error();
        if (auto r = apply_rows(plan->mailboxes, source, [&](const CsvRow& row) { return importer->add(row); }); !r)
            return r.error();
        if (auto r = apply_rows(plan->aliases, source, [&](const CsvRow& row) { return import_alias(db, row); }); !r)
            return r.error();
        if (!plan->aliases.empty()) {
            if (auto r = refuse_alias_problems(db); !r) return make_error(r.error().code, fmt::format("{}: {}", source, r.error().message));
        }
        return ImportStats{static_cast<std::int64_t>(plan->domains.size()), static_cast<std::int64_t>(plan->units.size()),
                           static_cast<std::int64_t>(plan->mailboxes.size()),
                           static_cast<std::int64_t>(plan->aliases.size())};
    });
}

// ------------------------------------------------------------ export

namespace {

// Writes every row of `sql` through `row_fields`.
template <class Fn>
Result<void> export_rows(sqlite3* db, const char* sql, std::ostream& out, Fn&& row_fields) {
    return for_each_row(db, sql, [&](Query& q) { write_csv_row(out, row_fields(q)); });
}

}  // namespace

Result<void> Primary::export_csv(std::ostream& out) noexcept {
    sqlite3* db = db_->db.get();
    return guarded<void>([&]() -> Result<void> {
        // One read transaction: the export is one consistent generation.
        auto txn = Transaction::begin(db, false);
        if (!txn) return txn.error();
        write_csv_row(out, {"kind", "address", "value", "state"});
        auto r = export_rows(db, "SELECT name FROM domains ORDER BY name", out,
                             [](Query& q) { return std::vector<std::string>{"domain", q.text(0), "", ""}; });
        if (r) r = export_rows(db, "SELECT name, transport || ':' || nexthop, state FROM units ORDER BY name", out,
                               [](Query& q) { return std::vector<std::string>{"unit", q.text(0), q.text(1), q.text(2)}; });
        if (r) r = export_rows(db,
                               "SELECT address, unit, CASE WHEN state = 'moving' THEN 'moving:' || moving_to"
                               " ELSE state END FROM mailboxes ORDER BY address",
                               out, [](Query& q) { return std::vector<std::string>{"mailbox", q.text(0), q.text(1), q.text(2)}; });
        if (r) r = export_rows(db, "SELECT address, target FROM aliases ORDER BY address, target", out,
                               [](Query& q) { return std::vector<std::string>{"alias", q.text(0), q.text(1), ""}; });
        if (!r) return r;
        out.flush();
        if (!out) return make_error(Errc::Io, "export: write failed");
        return {};
    });
}

// ------------------------------------------------------------ check

namespace {

// Runs `sql` and adds one problem line per row, made by `describe`.
template <class Fn>
Result<void> collect(sqlite3* db, const char* sql, std::vector<std::string>& problems, Fn&& describe) {
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

Result<void> check_keys(sqlite3* db, const char* sql, const char* what, const std::unordered_set<std::string>& domains,
                        std::vector<std::string>& problems) {
    return for_each_row(db, sql, [&](Query& q) {
        std::string address = q.text(0);
        std::string key = stored_key(address);
        if (key.empty()) problems.push_back(fmt::format("{} {}: malformed address", what, address));
        else if (key != address) problems.push_back(fmt::format("{} {}: not normalised (expected {})", what, address, key));
        else if (!domains.count(std::string(domain_of(key))))
            problems.push_back(fmt::format("{} {}: domain {} is not served", what, address, domain_of(key)));
    });
}

// Alias targets in served domains must be stored keys too; external ones
// keep the case of their local part, so only their domain is checked.
Result<void> check_targets(sqlite3* db, const std::unordered_set<std::string>& domains,
                           std::vector<std::string>& problems) {
    return for_each_row(db, "SELECT DISTINCT target FROM aliases ORDER BY target", [&](Query& q) {
        std::string target = q.text(0);
        std::string key = stored_key(target);
        if (key.empty()) problems.push_back(fmt::format("alias target {}: malformed address", target));
        else if (domains.count(std::string(domain_of(key))) && key != target)
            problems.push_back(fmt::format("alias target {}: not normalised (expected {})", target, key));
    });
}

}  // namespace

Result<std::vector<std::string>> Primary::check() noexcept {
    sqlite3* db = db_->db.get();
    return guarded<std::vector<std::string>>([&]() -> Result<std::vector<std::string>> {
        auto txn = Transaction::begin(db, false);
        if (!txn) return txn.error();
        std::vector<std::string> problems;
        auto r = collect(db, "SELECT * FROM pragma_integrity_check WHERE integrity_check <> 'ok'", problems,
                         [](Query& q) { return "integrity: " + q.text(0); });
        if (!r) return r.error();
        std::unordered_set<std::string> domains;
        if (auto d = for_each_row(db, "SELECT name FROM domains", [&](Query& q) { domains.insert(q.text(0)); }); !d)
            return d.error();
        const std::pair<const char*, std::function<std::string(Query&)>> checks[] = {
            {"SELECT address, unit FROM mailboxes WHERE unit NOT IN (SELECT name FROM units)",
             [](Query& q) { return fmt::format("mailbox {}: on unknown unit {}", q.text(0), q.text(1)); }},
            {"SELECT address, moving_to FROM mailboxes WHERE moving_to IS NOT NULL"
             " AND moving_to NOT IN (SELECT name FROM units)",
             [](Query& q) { return fmt::format("mailbox {}: moving to unknown unit {}", q.text(0), q.text(1)); }},
            {"SELECT address FROM mailboxes WHERE state = 'moving' AND moving_to IS NULL",
             [](Query& q) { return fmt::format("mailbox {}: moving without moving_to", q.text(0)); }},
            {"SELECT address, moving_to FROM mailboxes WHERE state <> 'moving' AND moving_to IS NOT NULL",
             [](Query& q) { return fmt::format("mailbox {}: moving_to {} set but not moving", q.text(0), q.text(1)); }},
            {"SELECT address, state FROM mailboxes WHERE state NOT IN ('active', 'moving', 'suspended', 'disabled')",
             [](Query& q) { return fmt::format("mailbox {}: bad state \"{}\"", q.text(0), q.text(1)); }},
            {"SELECT name, state FROM units WHERE state NOT IN ('active', 'draining', 'down')",
             [](Query& q) { return fmt::format("unit {}: bad state \"{}\"", q.text(0), q.text(1)); }},
            {"SELECT 'generation' WHERE NOT EXISTS (SELECT 1 FROM meta WHERE key = 'generation')",
             [](Query&) { return std::string("meta: generation is missing"); }},
        };
        for (const auto& [sql, describe] : checks) {
            if (auto c = collect(db, sql, problems, describe); !c) return c.error();
        }
        if (auto c = check_keys(db, "SELECT address FROM mailboxes ORDER BY address", "mailbox", domains, problems); !c)
            return c.error();
        if (auto c = check_keys(db, "SELECT DISTINCT address FROM aliases ORDER BY address", "alias", domains, problems); !c)
            return c.error();
        if (auto c = check_targets(db, domains, problems); !c) return c.error();
        for (const auto& domain : domains) {
            auto normal = normalize_domain(domain);
            if (!normal || *normal != domain)
                problems.push_back(fmt::format("domain {}: not normalised{}", domain,
                                               normal ? fmt::format(" (expected {})", *normal) : std::string()));
        }
        auto aliases = alias_problems(db);
        if (!aliases) return aliases.error();
        problems.insert(problems.end(), aliases->begin(), aliases->end());
        return problems;
    });
}

// ------------------------------------------------------------ publish

namespace {

Result<void> fsync_path(const std::string& path, int flags) {
    // Safe here: no SQLite connection of this process has `path` open any more.
    int fd = ::open(path.c_str(), flags | O_CLOEXEC);
    if (fd < 0) return make_error(Errc::Io, fmt::format("{}: open: {}", path, std::strerror(errno)));
    int rc = ::fsync(fd);
    int saved = errno;
    ::close(fd);
    if (rc != 0) return make_error(Errc::Io, fmt::format("{}: fsync: {}", path, std::strerror(saved)));
    return {};
}

// Turns the fresh copy into a replica: rollback journal (readers need no
// -shm/-wal files), stamped, checked. Returns its generation.
Result<std::int64_t> finish_snapshot(const std::string& tmp, const std::string& published_at) {
    auto db = open_rw(tmp, false);
    if (!db) return db.error();
    if (auto r = exec(db->get(), "PRAGMA journal_mode = DELETE"); !r) return r.error();
    if (auto r = run(db->get(), "INSERT OR REPLACE INTO meta (key, value) VALUES ('published_at', ?1)", {published_at}); !r)
        return r.error();
    auto check = query_text(db->get(), "PRAGMA quick_check", {});
    if (!check) return check.error();
    if (!check->has_value() || **check != "ok")
        return make_error(Errc::Corrupt, fmt::format("{}: quick_check failed: {}", tmp, check->value_or("no answer")));
    return count(db->get(), "SELECT value FROM meta WHERE key = 'generation'", {});
}

// Gives the new snapshot a modification time at least a whole second after
// the one it replaces. rsync's quick check compares size and integer-second
// mtime: two publishes within one second often have the same size, and
// `rsync -t` would skip the second one and leave every replica a generation
// behind. A missing `out` (first publish) leaves the time as written.
Result<void> stamp_after_previous(const std::string& tmp, const std::string& out) {
    struct stat previous {}, fresh {};
    if (::stat(out.c_str(), &previous) != 0) return {};
    if (::stat(tmp.c_str(), &fresh) != 0)
        return make_error(Errc::Io, fmt::format("{}: stat: {}", tmp, std::strerror(errno)));
    if (fresh.st_mtim.tv_sec > previous.st_mtim.tv_sec) return {};
    const struct timespec times[2] = {{0, UTIME_OMIT}, {previous.st_mtim.tv_sec + 1, 0}};
    if (::utimensat(AT_FDCWD, tmp.c_str(), times, 0) != 0)
        return make_error(Errc::Io, fmt::format("{}: utimensat: {}", tmp, std::strerror(errno)));
    return {};
}

}  // namespace

Result<PublishInfo> Primary::publish(const std::string& out) noexcept {
    return guarded<PublishInfo>([&]() -> Result<PublishInfo> {
        namespace fs = std::filesystem;
        std::error_code ec;
        if (fs::exists(out, ec) && fs::equivalent(out, db_->path, ec))
            return make_error(Errc::Invalid, fmt::format("publish: {} is the primary database itself", out));
        fs::path target(out);
        fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
        std::string tmp = (dir / fmt::format(".{}.tmp{}", target.filename().string(), ::getpid())).string();
        fs::remove(tmp, ec);
        auto cleanup = [&](const Error& e) {
            fs::remove(tmp, ec);
            return make_error(e.code, fmt::format("publish {}: {}", out, e.message));
        };
        // VACUUM INTO reads one committed snapshot of the primary: consistent
        // even while unitctl or the provider's system keeps writing.
        if (auto r = run(db_->db.get(), "VACUUM INTO ?1", {tmp}); !r) return cleanup(r.error());
        std::string published_at = utc_now();
        auto generation = finish_snapshot(tmp, published_at);
        if (!generation) return cleanup(generation.error());
        if (auto r = stamp_after_previous(tmp, out); !r) return cleanup(r.error());
        if (auto r = fsync_path(tmp, O_RDONLY); !r) return cleanup(r.error());
        if (::rename(tmp.c_str(), out.c_str()) != 0)
            return cleanup(make_error(Errc::Io, fmt::format("{}: rename: {}", out, std::strerror(errno))));
        if (auto r = fsync_path(dir.string(), O_RDONLY | O_DIRECTORY); !r)
            return make_error(r.error().code, fmt::format("publish {}: {}", out, r.error().message));
        return PublishInfo{out, generation.value(), published_at};
    });
}

}  // namespace unit
