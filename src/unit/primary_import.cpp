// Primary::import_csv: a CSV file of the export format in one transaction,
// read as a stream, so that memory does not grow with the file.
//
// Rows are applied as they are read when they can be: domains and units
// always; a mailbox when its domain and units are known and it comes after
// the previous mailbox in key order (an export's order, which fills the
// b-tree's pages one after the other). The other rows are held back in a
// scratch database on disk: a mailbox that names a domain or unit of a later
// row or comes out of key order, and every alias (whether its target is
// folded depends on every domain of the file, and it must resolve once
// every row is in). Once the file is read, the held mailboxes are applied in
// key order (SQLite sorts them on disk), then the aliases in file order,
// and the aliases checked. Every error names the row's line; any error rolls
// the whole transaction back. Memory: SQLite's page cache (16 MiB), its
// sorter (as much again), and a few rows.
#include <fmt/format.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <string_view>
#include <unordered_set>
#include <utility>

#include "unit/csv.hpp"
#include "unit/primary.hpp"
#include "unit/primary_support.hpp"
#include "unit/statements.hpp"

namespace unit {

using namespace detail;  // the helpers of primary_support.hpp

namespace {

// How often the progress callback hears about the rows read or applied.
constexpr std::uint64_t progress_every = 4096;

Error at_line(const std::string& source, std::uint64_t line, const Error& e) {
    return make_error(e.code, fmt::format("{}:{}: {}", source, line, e.message));
}

// Whether a domain or unit exists, asked of the database. Positive answers
// are remembered, up to a bound: an import only adds names, so a name
// found stays found; one not found may come with a later row.
class KnownNames {
public:
    // `lookup`: SELECT 1 ... WHERE name = ?1.
    explicit KnownNames(StmtHandle lookup) : lookup_(std::move(lookup)) {}

    Result<bool> contains(std::string_view name) {
        std::string key(name);
        if (known_.count(key) != 0) return true;
        Query q(lookup_.get());
        auto found = q.bind(1, key).step();
        if (!found || !found.value()) return found;
        if (known_.size() >= max_known) known_.clear();
        known_.insert(std::move(key));
        return true;
    }

private:
    static constexpr std::size_t max_known = 4096;
    StmtHandle lookup_;
    std::unordered_set<std::string> known_;
};

// A scratch database on disk for the held rows, attached to the import's
// connection as "import_scratch": a file of the temporary directory
// (TMPDIR), unlinked as soon as SQLite has it open, so that nothing is left
// behind whatever happens; detached (and gone) with this object.
class Scratch {
public:
    static Result<Scratch> attach(sqlite3* db) {
        std::string path = (std::filesystem::temp_directory_path() / "unitctl-import-XXXXXX").string();
        const int fd = ::mkstemp(path.data());
        if (fd < 0) return make_error(Errc::Io, fmt::format("import: {}: {}", path, std::strerror(errno)));
        ::close(fd);
        auto attached = run(db, sql::import_scratch::attach, {path});
        ::unlink(path.c_str());
        if (!attached) return attached.error();
        Scratch scratch(db);
        // Nothing to roll back: the scratch rows die with the import.
        auto r = exec(db, sql::import_scratch::journal_off);
        if (r) r = exec(db, sql::import_scratch::synchronous_off);
        if (r) r = exec(db, sql::import_scratch::cache_8mib);
        if (!r) return r.error();
        return scratch;
    }
    Scratch(Scratch&& other) noexcept : db_(std::exchange(other.db_, nullptr)) {}
    Scratch& operator=(Scratch&&) = delete;
    ~Scratch() {
        if (db_ != nullptr) exec_noexcept(db_, sql::import_scratch::detach);
    }

private:
    explicit Scratch(sqlite3* db) noexcept : db_(db) {}
    sqlite3* db_;
};

// The rows held back, in the scratch database: a table per kind, the
// mailboxes' b-tree in the order they are applied in (SQLite would sort them
// in memory otherwise: TEMP is memory, see import_csv), the aliases' in file
// order (their line, the rowid).
class HeldRows {
public:
    static Result<HeldRows> create(sqlite3* db) {
        for (SqlText table : {sql::import_scratch::create_mailbox, sql::import_scratch::create_alias})
            if (auto r = exec(db, table); !r) return r.error();
        auto mailbox = prepare(db, sql::import_scratch::insert_mailbox);
        if (!mailbox) return mailbox.error();
        auto alias = prepare(db, sql::import_scratch::insert_alias);
        if (!alias) return alias.error();
        return HeldRows(db, std::move(mailbox.value()), std::move(alias.value()));
    }

    // A mailbox or alias row.
    Result<void> hold(const CsvRow& row) {
        sqlite3_stmt* insert = row.fields[0] == "mailbox" ? mailbox_.get() : alias_.get();
        Query q(insert);
        sqlite3_bind_int64(insert, 1, static_cast<sqlite3_int64>(row.line));
        q.bind(2, row.fields[0]).bind(3, row.fields[1]).bind(4, row.fields[2]).bind(5, row.fields[3]);
        if (auto r = q.run(); !r) return r;
        ++count_;
        return {};
    }

    std::uint64_t count() const noexcept { return count_; }

    // Calls take(row) for each held mailbox, in key order (as the file
    // spells it), then line.
    template <class Take>
    Result<void> for_each_mailbox(Take&& take) {
        return walk(sql::import_scratch::mailboxes, take);
    }
    // ... each held alias, in file order.
    template <class Take>
    Result<void> for_each_alias(Take&& take) {
        return walk(sql::import_scratch::aliases, take);
    }

private:
    HeldRows(sqlite3* db, StmtHandle mailbox, StmtHandle alias)
        : db_(db), mailbox_(std::move(mailbox)), alias_(std::move(alias)) {}

    template <class Take>
    Result<void> walk(SqlText sql, Take&& take) {
        auto stmt = prepare(db_, sql);
        if (!stmt) return stmt.error();
        Query q(stmt->get());
        CsvRow row;
        return for_each_row(q, [&](Query& r) -> Result<void> {
            row.line = static_cast<std::uint64_t>(r.integer(0));
            row.fields = {r.text(1), r.text(2), r.text(3), r.text(4)};
            return take(static_cast<const CsvRow&>(row));
        });
    }

    sqlite3* db_;
    StmtHandle mailbox_, alias_;
    std::uint64_t count_ = 0;
};

enum class Taken { Applied, Held };

// Inserts mailboxes with one prepared statement, their domains and units
// looked up through KnownNames.
class MailboxImporter {
public:
    static Result<MailboxImporter> create(sqlite3* db) {
        auto insert = prepare(db, sql::mailboxes::insert_full);
        if (!insert) return insert.error();
        auto domains = prepare(db, sql::domains::exists);
        if (!domains) return domains.error();
        auto units = prepare(db, sql::units::exists);
        if (!units) return units.error();
        return MailboxImporter(std::move(insert.value()), KnownNames(std::move(domains.value())),
                               KnownNames(std::move(units.value())));
    }

    // While the file is read (`may_hold`), a row that names a domain or unit
    // not there yet, or comes out of key order, is left to the caller to hold;
    // afterwards every row is applied or refused.
    Result<Taken> add(const CsvRow& row, bool may_hold) {
        auto mailbox = mailbox_from_row(row);
        if (!mailbox) return mailbox.error();
        missing_ = false;
        // Made here, not kept: the importer moves, and `this` with it.
        const NameCheck served = [this](std::string_view domain) { return known(domains_, domain); };
        const NameCheck unit_exists = [this](std::string_view unit) { return known(units_, unit); };
        if (auto r = check_mailbox(*mailbox, served, unit_exists); !r) {
            if (may_hold && missing_) return Taken::Held;
            return r.error();
        }
        const std::string& key = mailbox->address;
        if (may_hold && key <= last_) return Taken::Held;
        std::optional<std::string> moving_to;
        if (mailbox->state == MailboxState::Moving) moving_to = mailbox->moving_to;
        Query q(insert_.get());
        q.bind(1, key).bind(2, mailbox->unit).bind(3, to_string(mailbox->state)).bind_optional(4, moving_to);
        if (auto r = q.run(); !r) {
            if (r.error().code == Errc::Conflict)
                return make_error(Errc::Conflict, fmt::format("mailbox {}: already exists", key));
            return r.error();
        }
        if (may_hold) last_ = key;
        return Taken::Applied;
    }

private:
    MailboxImporter(StmtHandle insert, KnownNames domains, KnownNames units)
        : insert_(std::move(insert)), domains_(std::move(domains)), units_(std::move(units)) {}

    // A name not found: a later row may add it (missing_).
    Result<bool> known(KnownNames& names, std::string_view name) {
        auto found = names.contains(name);
        if (found && !found.value()) missing_ = true;
        return found;
    }

    StmtHandle insert_;
    KnownNames domains_, units_;
    bool missing_ = false;
    std::string last_;  // the key of the last mailbox applied while reading
};

Result<void> import_domain(sqlite3* db, const CsvRow& row) {
    auto domain = normalize_domain(row.fields[1]);
    if (!domain) return domain.error();
    auto served = domain_served(db, *domain);
    if (!served) return served.error();
    if (served.value()) return make_error(Errc::Conflict, fmt::format("domain {}: already served", *domain));
    return run(db, sql::domains::insert, {*domain});
}

Result<void> import_unit(sqlite3* db, const CsvRow& row, std::string_view hold_transport) {
    auto unit = unit_from_row(row);
    if (!unit) return unit.error();
    if (auto r = check_unit_fields(*unit, hold_transport); !r) return r;
    auto dup = exists(db, sql::units::exists, {unit->name});
    if (!dup) return dup.error();
    if (dup.value()) return make_error(Errc::Conflict, fmt::format("unit {}: already exists", unit->name));
    return run(db, sql::units::insert,
               {unit->name, unit->transport, unit->nexthop, std::string(to_string(unit->state))});
}

// An alias row as stored: its key and target.
struct StoredAlias {
    std::string key, target;
};

Result<StoredAlias> stored_alias(sqlite3* db, const CsvRow& row) {
    auto alias = alias_from_row(row);
    if (!alias) return alias.error();
    auto key = alias_key(db, alias->address);
    if (!key) return key.error();
    auto target = alias_target(db, alias->target);
    if (!target) return target.error();
    return StoredAlias{std::move(key.value()), std::move(target.value())};
}

Result<void> import_alias(sqlite3* db, const CsvRow& row) {
    auto alias = stored_alias(db, row);
    if (!alias) return alias.error();
    const auto& [key, target] = alias.value();
    auto dup = exists(db, sql::aliases::pair_exists, {key, target});
    if (!dup) return dup.error();
    if (dup.value()) return make_error(Errc::Conflict, fmt::format("alias {} -> {}: already exists", key, target));
    return run(db, sql::aliases::insert, {key, target});
}

// One import: the transaction's body.
class Import {
public:
    Import(sqlite3* db, const PrimaryOptions& options, const std::string& source, const ImportProgressFn& progress)
        : db_(db), options_(options), source_(source), progress_(progress) {}

    Result<ImportStats> run(std::istream& in) {
        auto held = HeldRows::create(db_);
        if (!held) return held.error();
        auto mailboxes = MailboxImporter::create(db_);
        if (!mailboxes) return mailboxes.error();
        if (auto r = read(in, *held, *mailboxes); !r) return r.error();
        if (auto r = apply_held(*held, *mailboxes); !r) return r.error();
        report(ImportProgress::Step::Committing);
        return stats_;
    }

private:
    Result<void> read(std::istream& in, HeldRows& held, MailboxImporter& mailboxes) {
        detail::ExportReader reader(in, source_);
        for (;;) {
            auto next = reader.next();
            if (!next) return next.error();
            if (!next.value()) break;
            const CsvRow& row = *next.value();
            if (auto r = take(row, held, mailboxes); !r) return at_line(source_, row.line, r.error());
            rows_ = reader.end().rows;
            bytes_ = reader.bytes();
            if (rows_ % progress_every == 0) report(ImportProgress::Step::Reading, held.count());
        }
        rows_ = reader.end().rows;
        bytes_ = reader.bytes();
        return {};
    }

    Result<void> take(const CsvRow& row, HeldRows& held, MailboxImporter& mailboxes) {
        const std::string& kind = row.fields[0];
        if (kind == "domain") return count(import_domain(db_, row), stats_.domains);
        if (kind == "unit") return count(import_unit(db_, row, options_.hold_transport), stats_.units);
        if (kind == "mailbox") {
            auto taken = mailboxes.add(row, true);
            if (!taken) return taken.error();
            if (taken.value() == Taken::Applied) {
                ++stats_.mailboxes;
                return {};
            }
        }
        return held.hold(row);
    }

    Result<void> apply_held(HeldRows& held, MailboxImporter& mailboxes) {
        const std::uint64_t total = held.count();
        std::uint64_t applied = 0;
        auto step = [&]() {
            if (++applied % progress_every == 0) report(ImportProgress::Step::Applying, total, applied);
        };
        if (total > 0) report(ImportProgress::Step::Applying, total, 0);
        // Mailboxes first, in key order; then the aliases, which need them.
        auto r = held.for_each_mailbox([&](const CsvRow& row) -> Result<void> {
            step();
            auto taken = mailboxes.add(row, false);
            if (!taken) return at_line(source_, row.line, taken.error());
            ++stats_.mailboxes;
            return {};
        });
        if (!r) return r;
        r = held.for_each_alias([&](const CsvRow& row) -> Result<void> {
            step();
            if (auto a = import_alias(db_, row); !a) return at_line(source_, row.line, a.error());
            ++stats_.aliases;
            return {};
        });
        if (!r || stats_.aliases == 0) return r;
        report(ImportProgress::Step::Checking, total, applied);
        if (auto d = refuse_dangling(held); !d) return d;
        if (auto p = refuse_alias_problems(db_, options_.max_alias_targets); !p)
            return make_error(p.error().code, fmt::format("{}: {}", source_, p.error().message));
        return {};
    }

    // Every target imported resolves, now that every row of the file is in.
    Result<void> refuse_dangling(HeldRows& held) {
        TargetResolver resolver(db_, options_.recipient_delimiter);
        return held.for_each_alias([&](const CsvRow& row) -> Result<void> {
            auto alias = stored_alias(db_, row);
            if (!alias) return at_line(source_, row.line, alias.error());
            auto resolves = resolver.resolves(alias->key, alias->target);
            if (!resolves) return resolves.error();
            if (!resolves.value())
                return at_line(source_, row.line,
                               make_error(Errc::Conflict, dangling_target(alias->key, alias->target)));
            return {};
        });
    }

    static Result<void> count(Result<void>&& r, std::int64_t& counter) {
        if (r) ++counter;
        return std::move(r);
    }

    void report(ImportProgress::Step step, std::uint64_t held = 0, std::uint64_t applied = 0) {
        if (progress_) progress_(ImportProgress{step, rows_, bytes_, held, applied});
    }

    sqlite3* db_;
    const PrimaryOptions& options_;
    const std::string& source_;
    const ImportProgressFn& progress_;
    ImportStats stats_;
    std::uint64_t rows_ = 0, bytes_ = 0;
};

}  // namespace

Result<ImportStats> Primary::import_csv(std::istream& in, const std::string& source,
                                        const ImportProgressFn& progress) noexcept {
    sqlite3* db = db_->db.get();
    return guarded<ImportStats>([&]() -> Result<ImportStats> {
        // The page cache of the import's connection. Big enough for the pages
        // an import in key order keeps touching (the right edge of each
        // b-tree, one leaf of mailboxes_by_unit per unit); SQLite's sorter of
        // the held rows may use as much again.
        if (auto r = exec(db, sql::settings::cache_16mib); !r) return r.error();
        // Every insert's statement journal (the generation trigger makes each
        // one write two rows, which needs one) in memory, where it stays a few
        // pages: on disk, it would be written and rewritten for every row.
        // This also makes TEMP tables memory: the held rows go to Scratch.
        if (auto r = exec(db, sql::settings::temp_store_memory); !r) return r.error();
        auto result = [&]() -> Result<ImportStats> {
            auto scratch = Scratch::attach(db);
            if (!scratch) return scratch.error();
            return in_transaction<ImportStats>(db,
                                               [&]() { return Import(db, db_->options, source, progress).run(in); });
        }();
        if (auto r = exec(db, sql::settings::temp_store_default); !r && result) return r.error();
        return result;
    });
}

}  // namespace unit
