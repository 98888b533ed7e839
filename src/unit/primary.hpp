// primary.hpp: the primary (writable) database, as unitctl edits it.
//
// Primary owns one read-write SQLite connection in WAL mode with foreign
// keys on. Every call is one transaction: it either completes or changes
// nothing. Addresses and domains are normalised (address.hpp) before they
// are stored; the local part of an alias target outside the served domains
// keeps its case (its domain is lowercased like every domain).
// meta.generation is bumped by the schema's triggers, not by this code.
// meta.primary_id (32 random hex digits) names the primary: init writes it
// into a database that lacks it, publish too, and every snapshot carries it.
// Values that reach Postfix verbatim (transports, nexthops, alias targets)
// are checked with values.hpp before they are stored.
//
// Outcomes of the calls, besides success:
//   Errc::Invalid     a value is malformed (address, domain, nexthop, CSV row)
//   Errc::NotFound    an object named by the call does not exist
//   Errc::Conflict    the call contradicts the data (duplicate, domain not
//                     served, unit still has mailboxes, move to the same
//                     unit, new mailbox on a draining unit, ...)
//   Errc::Unavailable the database is locked or cannot be opened
//   Errc::Corrupt     the file is not a unitpolicy database of a supported
//                     schema version
//   Errc::Io          writing a snapshot failed
// Messages are one line, without the program name. No exception escapes.
// Thread safety: one Primary per thread. Logs nothing.
#pragma once

#include <cstdint>
#include <functional>
#include <istream>
#include <memory>
#include <optional>
#include <ostream>
#include <string>
#include <vector>

#include "unit/export.hpp"
#include "unit/moves.hpp"
#include "unit/records.hpp"
#include "unit/result.hpp"

namespace unit {

namespace detail {
struct PrimaryDb;
}
struct SourceDirectory;  // source.hpp
struct SyncOptions;      // sync.hpp
struct SyncPlan;

struct UnitSummary {
    UnitRecord unit;
    std::int64_t mailboxes = 0;  // mailboxes whose unit is this one
};

struct UnitChange {
    std::optional<UnitState> state;
    std::optional<std::string> nexthop;
    std::optional<std::string> transport;
};

// What the site's daemons are configured with, for the rules that depend
// on it. Defaults are the daemons' defaults.
struct PrimaryOptions {
    std::string hold_transport = "unithold";  // never a unit's transport (check_transport)
    std::string recipient_delimiter;          // an alias target user+tag@ lands in user@'s mailbox
    int max_alias_targets = 1000;             // alias rows one expansion may visit (resolver.hpp)
    // add_alias refuses a target in a served domain that resolves to nothing
    // (no mailbox, no alias, no catch-all). unitctl sets it; a program that
    // writes an alias before its targets leaves it off. import_csv always
    // refuses such targets unless the same file defines them.
    bool refuse_dangling_targets = false;
};

// The result of check(): problems are data that answers wrongly (exit 1 in
// unitctl); warnings are legal but probably unintended (printed, exit 0).
struct CheckReport {
    std::vector<std::string> problems;
    std::vector<std::string> warnings;
};

// How publish replaces the snapshot already at OUT.
enum class PublishOverride {
    None,      // same primary, same or higher generation only
    Rollback,  // a deliberate lower generation of the same primary (meta.publish_override = rollback)
    Takeover,  // another primary, any generation (meta.publish_override = takeover)
};

// A limit on the mailboxes a publish may remove from the previous snapshot:
// a count, or a percentage of the previous snapshot's mailboxes.
struct RemovalLimit {
    std::int64_t value = 0;
    bool percent = false;
};

struct PublishOptions {
    PublishOverride override_generation = PublishOverride::None;
    // Unset: 5% of the previous snapshot's mailboxes or 500, whichever is larger.
    std::optional<RemovalLimit> max_removed;
    // Replaces an OUT that is not a unitpolicy snapshot, and removes any
    // number of mailboxes. Never replaces an OUT that is not a regular file.
    bool force = false;
    unsigned mode = 0644;  // the snapshot's permission bits, whatever the umask
};

// The meta keys that say what a database file is.
struct DatabaseMeta {
    std::int64_t generation = 0;
    std::optional<std::string> primary_id;
    std::optional<std::string> published_at;      // present in a published snapshot only
    std::optional<std::string> publish_override;  // "rollback" or "takeover"
};

// Reads them read-only through SQLite, changing nothing. Errc::NotFound
// when `path` does not exist, Errc::Invalid when it is not a regular file
// (it is never opened then: a FIFO would block), Errc::Corrupt when it is
// not a unitpolicy database.
UNIT_EXPORT Result<DatabaseMeta> read_database_meta(const std::string& path) noexcept;

struct ImportStats {
    std::int64_t domains = 0, units = 0, mailboxes = 0, aliases = 0;
};

// How far import_csv() is, for a progress line: reading the file (rows
// applied as they come, others held back), applying the held rows, checking
// the aliases, committing.
struct ImportProgress {
    enum class Step { Reading, Applying, Checking, Committing };
    Step step = Step::Reading;
    std::uint64_t rows = 0;     // object rows read so far
    std::uint64_t bytes = 0;    // bytes of the file read so far
    std::uint64_t held = 0;     // rows held back until the whole file is read
    std::uint64_t applied = 0;  // Applying: held rows applied so far
};
using ImportProgressFn = std::function<void(const ImportProgress&)>;

struct PublishInfo {
    std::string path;
    std::int64_t generation = 0;
    std::string published_at;  // ISO 8601 UTC, as stored in meta.published_at
    std::int64_t removed = 0;  // mailboxes of the previous snapshot it no longer has
};

class UNIT_EXPORT Primary {
public:
    // Opens an existing database; Errc::Corrupt when its schema version is
    // missing or newer than this build supports, Errc::NotFound when the
    // file does not exist.
    static Result<Primary> open(const std::string& path, PrimaryOptions options = {}) noexcept;
    // Creates the database, or upgrades an older one, by applying the
    // numbered migrations it lacks (each in one transaction), and gives it
    // a primary_id when it has none.
    static Result<Primary> init(const std::string& path, PrimaryOptions options = {}) noexcept;

    Primary(Primary&&) noexcept;
    Primary& operator=(Primary&&) noexcept;
    ~Primary();

    Result<int> schema_version() noexcept;
    Result<std::int64_t> generation() noexcept;
    Result<DatabaseMeta> meta() noexcept;

    Result<void> add_domain(const std::string& domain) noexcept;
    Result<void> remove_domain(const std::string& domain) noexcept;  // Conflict while mailboxes or aliases use it
    Result<std::vector<std::string>> domains() noexcept;

    Result<void> add_unit(const UnitRecord& unit) noexcept;
    Result<void> change_unit(const std::string& name, const UnitChange& change) noexcept;
    Result<void> remove_unit(const std::string& name) noexcept;  // Conflict while mailboxes use it
    Result<std::vector<UnitSummary>> units() noexcept;

    Result<void> add_mailbox(const std::string& address, const std::string& unit) noexcept;
    // Active, Suspended or Disabled; Conflict during a move.
    Result<void> set_mailbox_state(const std::string& address, MailboxState state) noexcept;
    Result<void> remove_mailbox(const std::string& address) noexcept;
    Result<MailboxRecord> mailbox(const std::string& address) noexcept;
    Result<std::vector<MailboxRecord>> mailboxes(const std::optional<std::string>& unit) noexcept;

    // Moves, one mailbox or many per call (moves.hpp says which and how);
    // the single-address forms are the one-element case.
    Result<MoveCounts> begin_moves(const MoveSelection& selection, const std::string& to_unit) noexcept;
    Result<MoveCounts> finish_moves(const MoveSelection& selection) noexcept;  // they now live on moving_to
    Result<MoveCounts> abort_moves(const MoveSelection& selection) noexcept;   // they stay where they were
    Result<void> begin_move(const std::string& address, const std::string& to_unit) noexcept;
    Result<void> finish_move(const std::string& address) noexcept;
    Result<void> abort_move(const std::string& address) noexcept;

    Result<void> add_alias(const std::string& address, const std::vector<std::string>& targets) noexcept;
    // Removes one target, or every target of the address when none is given.
    Result<void> remove_alias(const std::string& address, const std::optional<std::string>& target) noexcept;
    Result<std::vector<AliasRecord>> aliases() noexcept;

    // Imports a CSV file (csv.hpp) in one transaction. A bad row fails the
    // whole import with "SOURCE:LINE: problem" and changes nothing; so does
    // an alias target in a served domain that resolves to nothing once
    // every row is in, and an alias past max_alias_targets. Rows may come in
    // any order. Memory does not grow with the file: rows that cannot be
    // applied when read wait in a temporary table on disk (SQLite's temp
    // directory). `progress` is called every few thousand rows and at each
    // step; its exceptions end the import (Errc::Unavailable).
    Result<ImportStats> import_csv(std::istream& in, const std::string& source,
                                   const ImportProgressFn& progress = {}) noexcept;
    // Writes every object as CSV; importing it into an empty database gives
    // back the same data.
    Result<void> export_csv(std::ostream& out) noexcept;

    // Makes the primary equal to `source` in one transaction (sync.hpp says
    // how, and what it refuses).
    Result<SyncPlan> sync(const SourceDirectory& source, const SyncOptions& options) noexcept;

    // Integrity and invariant check. Problems: integrity_check failures,
    // mailboxes or moves on unknown units, moving without moving_to,
    // addresses outside the served domains, unnormalised keys, transports,
    // nexthops and alias targets that values.hpp refuses, alias cycles,
    // aliases deeper than the resolver follows or visiting more than
    // max_alias_targets rows, and alias targets in a served domain that
    // resolve to nothing. Warnings: an alias whose every local target is
    // disabled or unknown (and none external), a served domain without
    // postmaster@ (no mailbox, alias or catch-all).
    Result<CheckReport> check_report() noexcept;
    // The problems of check_report() alone: empty means healthy.
    Result<std::vector<std::string>> check() noexcept;

    // Writes a consistent snapshot in rollback-journal mode into a private
    // directory made beside `out` (mkdtemp: nothing planted there is ever
    // followed), stamps meta.published_at and publish_override, verifies
    // it, gives it options.mode, fsyncs it and its directory, and renames it
    // onto `out`. Its mtime is at least a whole second after the file it
    // replaces, so `rsync -t` never takes a new snapshot for the old one.
    // Refused, writing nothing (Errc::Conflict unless said otherwise):
    //   - an `out` that exists and is not a regular file (Errc::Invalid), or
    //     is the primary or one of its -wal, -shm, -journal files;
    //   - an existing `out` that is not a unitpolicy snapshot (no
    //     published_at), unless options.force;
    //   - a snapshot of the same primary_id with a lower generation than
    //     `out`'s, unless Rollback or Takeover; one of another primary_id,
    //     unless Takeover;
    //   - one that removes more mailboxes of `out` than options.max_removed,
    //     unless options.force (the message gives the count and the first
    //     addresses).
    // A primary without primary_id gets one first.
    Result<PublishInfo> publish(const std::string& out, const PublishOptions& options = {}) noexcept;

private:
    explicit Primary(std::unique_ptr<detail::PrimaryDb> db) noexcept;
    std::unique_ptr<detail::PrimaryDb> db_;
};

}  // namespace unit
