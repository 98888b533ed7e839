// make_dataset() and mixed_workload(): a directory of known content and
// requests over it.
//
// The directory is generated straight into the schema that libunit's
// Primary::init creates (one transaction of prepared inserts in key order,
// the mailboxes' index and the triggers set aside meanwhile), then
// published by Primary::publish like any primary. Going through a CSV file
// and Primary::import_csv gives the same rows but costs minutes at ten
// million mailboxes; the content is valid by construction, and the tests
// check it with Primary::check.
#include <fcntl.h>
#include <fmt/format.h>
#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <iterator>
#include <memory>
#include <random>
#include <stdexcept>
#include <string_view>
#include <vector>

#include "load.hpp"
#include "unit/address.hpp"
#include "unit/primary.hpp"
#include "unit/sqlite.hpp"

namespace unit::load {

namespace {

constexpr std::size_t max_sample = 100'000;  // addresses kept in a Dataset, per kind

std::string unit_name(std::size_t index, std::size_t units) {
    std::size_t width = std::max<std::size_t>(4, std::to_string(units).size());
    return fmt::format("unit{:0{}}", index + 1, width);
}

std::string mailbox_address(std::size_t i, const std::vector<std::string>& domains) {
    return fmt::format("user{}@{}", i, domains[i % domains.size()]);
}

std::string alias_address(std::size_t i, const std::vector<std::string>& domains) {
    return fmt::format("alias{}@{}", i, domains[i % domains.size()]);
}

// "nobody" never names a mailbox or an alias.
std::string unknown_address(std::size_t i, const std::vector<std::string>& domains) {
    return fmt::format("nobody{}@{}", i, domains[i % domains.size()]);
}

void check_spec(const DatasetSpec& spec) {
    if (spec.domains.empty()) throw std::runtime_error("dataset: no domain");
    if (spec.units == 0) throw std::runtime_error("dataset: no unit");
    if (spec.mailboxes == 0) throw std::runtime_error("dataset: no mailbox");
    if (spec.aliases > 0 && (spec.units < 2 || spec.mailboxes < 2))
        throw std::runtime_error("dataset: aliases need two mailboxes on two units");
    // Rows are written as given: each domain must already be a stored key.
    for (const auto& domain : spec.domains) {
        auto normal = normalize_domain(domain);
        if (!normal || *normal != domain)
            throw std::runtime_error(fmt::format("dataset: domain {} is not normalised", domain));
    }
}

// Calls visit(i) for every i in [0, count) in the order of the keys
// "<prefix><i>@<domain>": the decimal strings compared as text, where a
// number comes after every number it is a prefix of ('@' sorts after the
// digits: user10@ < user1@). That is the decimal trie walked children
// first, digits ascending. Inserting in key order appends to the b-tree.
template <class Visit>
void in_key_order(std::size_t count, Visit&& visit) {
    auto walk = [&](auto& self, std::size_t n) -> void {
        for (std::size_t digit = 0; digit < 10; ++digit) {
            std::size_t child = n * 10 + digit;
            if (child >= count) break;
            self(self, child);
        }
        visit(n);
    };
    if (count > 0) visit(0);  // "0" has no longer form: no leading zeros
    for (std::size_t first = 1; first < 10 && first < count; ++first) walk(walk, first);
}

// ------------------------------------------------------------ SQLite

using Db = detail::DbHandle;
using Stmt = detail::StmtHandle;

[[noreturn]] void fail(sqlite3* db, std::string_view what) {
    throw std::runtime_error(fmt::format("dataset: {}: {}", what, sqlite3_errmsg(db)));
}

void exec(sqlite3* db, const std::string& sql) {
    if (sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr) != SQLITE_OK) fail(db, sql);
}

Stmt prepare(sqlite3* db, const char* sql) {
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v3(db, sql, -1, SQLITE_PREPARE_PERSISTENT, &stmt, nullptr) != SQLITE_OK) fail(db, sql);
    return Stmt(stmt);
}

// The first column of the first row of `sql`, as text ("" when none).
std::string scalar(sqlite3* db, const char* sql) {
    Stmt stmt = prepare(db, sql);
    int rc = sqlite3_step(stmt.get());
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) fail(db, sql);
    const unsigned char* text = rc == SQLITE_ROW ? sqlite3_column_text(stmt.get(), 0) : nullptr;
    return text ? reinterpret_cast<const char*>(text) : "";
}

// Binds the text parameters (valid until the call returns) and runs one insert.
template <std::size_t N>
void insert(sqlite3* db, sqlite3_stmt* stmt, const std::array<std::string_view, N>& values) {
    sqlite3_reset(stmt);
    for (std::size_t i = 0; i < N; ++i)
        sqlite3_bind_text(stmt, static_cast<int>(i + 1), values[i].data(), static_cast<int>(values[i].size()),
                          SQLITE_STATIC);
    if (sqlite3_step(stmt) != SQLITE_DONE) fail(db, sqlite3_sql(stmt));
}

// ------------------------------------------------------------ the rows

void insert_domains_and_units(sqlite3* db, const DatasetSpec& spec) {
    Stmt domain = prepare(db, "INSERT INTO domains (name) VALUES (?1)");
    for (const auto& name : spec.domains) insert<1>(db, domain.get(), {name});
    Stmt unit = prepare(db, "INSERT INTO units (name, transport, nexthop, state) VALUES (?1, 'smtp', ?2, 'active')");
    for (std::size_t u = 0; u < spec.units; ++u) {
        std::string name = unit_name(u, spec.units);
        insert<2>(db, unit.get(), {name, fmt::format("[{}.example]", name)});
    }
}

void insert_mailboxes(sqlite3* db, const DatasetSpec& spec) {
    std::vector<std::string> units;
    for (std::size_t u = 0; u < spec.units; ++u) units.push_back(unit_name(u, spec.units));
    Stmt stmt = prepare(db, "INSERT INTO mailboxes (address, unit, state) VALUES (?1, ?2, 'active')");
    fmt::memory_buffer address;
    in_key_order(spec.mailboxes, [&](std::size_t i) {
        address.clear();
        fmt::format_to(std::back_inserter(address), "user{}@{}", i, spec.domains[i % spec.domains.size()]);
        insert<2>(db, stmt.get(), {std::string_view(address.data(), address.size()), units[i % spec.units]});
    });
}

// Alias j points at mailboxes 2j and 2j+1 (mod the count), on neighbouring units.
void insert_aliases(sqlite3* db, const DatasetSpec& spec) {
    Stmt stmt = prepare(db, "INSERT INTO aliases (address, target) VALUES (?1, ?2)");
    in_key_order(spec.aliases, [&](std::size_t j) {
        std::string alias = alias_address(j, spec.domains);
        std::string first = mailbox_address((2 * j) % spec.mailboxes, spec.domains);
        std::string second = mailbox_address((2 * j + 1) % spec.mailboxes, spec.domains);
        if (second < first) std::swap(first, second);
        insert<2>(db, stmt.get(), {alias, first});
        insert<2>(db, stmt.get(), {alias, second});
    });
}

// The schema objects that make a bulk insert slow, set aside for it and
// made again afterwards from their own CREATE statements, in the same
// transaction: the indexes of the mailboxes table (one sort instead of ten
// million scattered index updates) and the triggers (each insert would run
// one: the generation bump, done once at the end instead).
struct SchemaObject {
    std::string type, name, sql;
};

std::vector<SchemaObject> slow_for_bulk_insert(sqlite3* db) {
    std::vector<SchemaObject> objects;
    Stmt stmt = prepare(db,
                        "SELECT type, name, sql FROM sqlite_schema WHERE sql IS NOT NULL"
                        " AND (type = 'trigger' OR (type = 'index' AND tbl_name = 'mailboxes'))");
    auto text = [&](int column) {
        return std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt.get(), column)));
    };
    while (sqlite3_step(stmt.get()) == SQLITE_ROW) objects.push_back({text(0), text(1), text(2)});
    return objects;
}

std::vector<SchemaObject> set_aside(sqlite3* db) {
    auto objects = slow_for_bulk_insert(db);
    for (const auto& object : objects) exec(db, fmt::format("DROP {} \"{}\"", object.type, object.name));
    return objects;
}

void restore(sqlite3* db, const std::vector<SchemaObject>& objects) {
    for (const auto& object : objects) exec(db, object.sql);
}

// What the triggers would have done: meta.generation goes up by one per row written.
void bump_generation(sqlite3* db, std::size_t rows) {
    exec(db, fmt::format("UPDATE meta SET value = CAST(value AS INTEGER) + {} WHERE key = 'generation'", rows));
    if (sqlite3_changes(db) != 1) fail(db, "meta.generation is missing");
}

// Opens `path` for the bulk write. The database is new and nobody else has
// it open: the rollback journal is kept in memory (a failed transaction
// still rolls back) and nothing is synced until the end (fill_primary).
Db open_for_bulk_write(const std::string& path) {
    sqlite3* raw = nullptr;
    int rc = sqlite3_open_v2(path.c_str(), &raw, SQLITE_OPEN_READWRITE, nullptr);
    Db db(raw);
    if (rc != SQLITE_OK) fail(raw, path);
    if (scalar(db.get(), "PRAGMA journal_mode = MEMORY") != "memory") fail(db.get(), "journal_mode = MEMORY");
    exec(db.get(), "PRAGMA synchronous = OFF");
    exec(db.get(), "PRAGMA cache_size = -262144");  // 256 MB: the index build sorts in memory
    // Foreign keys stay off: every unit a mailbox names is inserted just
    // before it, and Primary::check verifies the references.
    return db;
}

void fsync_file(const std::string& path) {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw std::runtime_error(fmt::format("dataset: {}: open: {}", path, std::strerror(errno)));
    int rc = ::fsync(fd);
    int saved = errno;
    ::close(fd);
    if (rc != 0) throw std::runtime_error(fmt::format("dataset: {}: fsync: {}", path, std::strerror(saved)));
}

// Fills the empty primary at `path` (made by Primary::init) in one
// transaction, gives it back its WAL mode, and syncs it.
void fill_primary(const DatasetSpec& spec, const std::string& path) {
    {
        Db db = open_for_bulk_write(path);
        exec(db.get(), "BEGIN IMMEDIATE");
        auto aside = set_aside(db.get());
        insert_domains_and_units(db.get(), spec);
        insert_mailboxes(db.get(), spec);
        insert_aliases(db.get(), spec);
        restore(db.get(), aside);
        bump_generation(db.get(), spec.domains.size() + spec.units + spec.mailboxes + 2 * spec.aliases);
        exec(db.get(), "COMMIT");
        if (scalar(db.get(), "PRAGMA journal_mode = WAL") != "wal") fail(db.get(), "journal_mode = WAL");
    }
    fsync_file(path);
}

// At most max_sample addresses, evenly spread over all of them.
Dataset sample(const DatasetSpec& spec) {
    Dataset data;
    std::size_t stride = std::max<std::size_t>(1, spec.mailboxes / max_sample);
    for (std::size_t i = 0; i < spec.mailboxes && data.existing.size() < max_sample; i += stride)
        data.existing.push_back(mailbox_address(i, spec.domains));
    for (std::size_t j = 0; j < spec.aliases && j < max_sample; ++j)
        data.aliases.push_back(alias_address(j, spec.domains));
    for (std::size_t i = 0; i < data.existing.size(); ++i) data.unknown.push_back(unknown_address(i, spec.domains));
    return data;
}

}  // namespace

Dataset make_dataset(const DatasetSpec& spec, const std::string& primary_path, const std::string& replica_path) {
    check_spec(spec);
    if (std::filesystem::exists(primary_path))
        throw std::runtime_error(fmt::format("dataset: {}: exists already", primary_path));
    if (auto created = Primary::init(primary_path); !created)
        throw std::runtime_error(fmt::format("dataset: {}", created.error().message));
    fill_primary(spec, primary_path);
    auto primary = Primary::open(primary_path);
    if (!primary) throw std::runtime_error(fmt::format("dataset: {}", primary.error().message));
    auto published = primary->publish(replica_path);
    if (!published) throw std::runtime_error(fmt::format("dataset: {}", published.error().message));
    return sample(spec);
}

std::vector<Request> mixed_workload(const Dataset& data, double unknown_share, std::size_t size) {
    if (data.existing.empty() || data.unknown.empty())
        throw std::runtime_error("workload: the dataset has no addresses");
    std::mt19937_64 random(20240601);  // fixed: every run sends the same requests
    std::bernoulli_distribution unknown(std::clamp(unknown_share, 0.0, 1.0));
    std::bernoulli_distribution alias(data.aliases.empty() ? 0.0 : 0.05);
    auto pick = [&random](const std::vector<std::string>& from) -> const std::string& {
        return from[std::uniform_int_distribution<std::size_t>(0, from.size() - 1)(random)];
    };
    std::vector<Request> workload;
    workload.reserve(size);
    for (std::size_t i = 0; i < size; ++i) {
        Request r;
        // Half policy, a quarter each of the recipient and transportmx maps.
        switch (i % 4) {
        case 0:
        case 2: r.protocol = Protocol::Policy; break;
        case 1: r.protocol = Protocol::Socketmap, r.map = "recipient"; break;
        default: r.protocol = Protocol::Socketmap, r.map = "transportmx"; break;
        }
        if (unknown(random)) {
            r.key = pick(data.unknown);
        } else if (r.map != "transportmx" && alias(random)) {
            r.key = pick(data.aliases);  // transportmx of an alias is NOTFOUND: Postfix rewrites aliases first
            r.exists = true;
        } else {
            r.key = pick(data.existing);
            r.exists = true;
        }
        workload.push_back(std::move(r));
    }
    return workload;
}

}  // namespace unit::load
